"""Models open to a newer API: unknown fields kept, wire/display forms, open enums, HTML view.

Behaviour is checked on both clients against the emulator answering like a newer API
(``Emulator.set_extra_fields``); the forms themselves on models built from JSON.
"""

from __future__ import annotations

import json
import pickle
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import attrs
import pytest

from codegen_async import AgentRun, AsyncAgent, Page, SlackConnectToken, SourceType, User, UserRole
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent

NEW_FIELDS = {"priority": "high", "labels": ["a", "b"], "cost": {"usd": 0.5}}
Call = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0, rate_limit="off") as emulator:
        yield emulator


@pytest.fixture(params=["async", "sync"])
async def call(request: pytest.FixtureRequest, emu: EmulatorThread) -> AsyncIterator[Call]:
    """``await call("get_run", 1)`` on an ``AsyncAgent`` or a blocking ``Agent``."""
    if request.param == "async":
        async with AsyncAgent(**emu.client_kwargs()) as client:

            async def call_async(name: str, *args: Any, **kwargs: Any) -> Any:
                return await getattr(client, name)(*args, **kwargs)

            yield call_async
    else:
        with Agent(**emu.client_kwargs()) as blocking:

            async def call_sync(name: str, *args: Any, **kwargs: Any) -> Any:
                return getattr(blocking, name)(*args, **kwargs)

            yield call_sync


@pytest.fixture
def newer_api(emu: EmulatorThread) -> Iterator[None]:
    emu.set_extra_fields(NEW_FIELDS)
    yield
    emu.set_extra_fields(None)


def round_trips(model: Any) -> None:
    data = model.to_dict()
    assert type(model).from_dict(data) == model
    assert json.loads(model.to_json()) == data
    assert json.loads(model.to_json(indent=None)) == data


@pytest.mark.usefixtures("newer_api")
async def test_unknown_fields_are_kept_and_round_trip(call: Call) -> None:
    run = await call("run", "Fix the flaky test", metadata={"priority": "mine"})
    assert run.model_extra == NEW_FIELDS
    assert run.metadata == {"priority": "mine"}  # a free-form object is not a model
    assert run.to_dict()["labels"] == ["a", "b"]
    round_trips(run)

    me = await call("get_current_user")
    assert me.model_extra == NEW_FIELDS
    data = me.to_dict()
    assert "is_admin" in data and "_is_admin" not in data and "_model_extra" not in data
    assert list(data)[-3:] == list(NEW_FIELDS)  # known fields first, then the new ones
    round_trips(me)

    page = await call("get_users", limit=5)
    assert page.model_extra == NEW_FIELDS
    assert all(user.model_extra == NEW_FIELDS for user in page.items)
    assert Page.from_dict(page.to_dict(), User) == page
    assert Page.from_dict(page.to_dict()).items == page.to_dict()["items"]


async def test_without_new_fields_model_extra_is_empty(call: Call) -> None:
    me = await call("get_current_user")
    assert me.model_extra == {}
    assert me._model_extra is None  # nothing built for the usual answer
    assert set(me.to_dict()) == {a.alias for a in attrs.fields(User)} - {"model_extra"}
    round_trips(me)


def test_the_emulator_switch_over_http(emu: EmulatorThread) -> None:
    import asyncio

    async def go() -> tuple[int, dict[str, Any], int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {emu.token}"}
        async with aiohttp.ClientSession() as http:
            put = await http.put(
                f"{emu.base_url}/_emulator/extra-fields", json={"fields": {"x": 1}}
            )
            async with http.get(f"{emu.base_url}/v1/users/me", headers=headers) as resp:
                with_extra = await resp.json()
            bad = await http.put(f"{emu.base_url}/_emulator/extra-fields", json={"x": 1})
            await http.delete(f"{emu.base_url}/_emulator/extra-fields")
            async with http.get(f"{emu.base_url}/v1/users/me", headers=headers) as resp:
                without = await resp.json()
            return put.status, with_extra, bad.status, without

    put_status, with_extra, bad_status, without = asyncio.run(go())
    assert put_status == 200 and with_extra["x"] == 1
    assert bad_status == 422
    assert "x" not in without


def test_model_extra_counts_in_equality_and_survives_pickle() -> None:
    data = {"id": 1, "organization_id": 2, "status": "ACTIVE", "new": [1]}
    run = AgentRun.from_dict(data)
    assert run.model_extra == {"new": [1]}
    assert run != AgentRun.from_dict({**data, "new": [2]})
    assert AgentRun(id=1, organization_id=2, model_extra={}) == AgentRun(id=1, organization_id=2)
    assert pickle.loads(pickle.dumps(run)) == run
    assert pickle.loads(pickle.dumps(run)).model_extra == {"new": [1]}
    assert hash(User.from_dict({"id": 1, "github_user_id": "1", "github_username": "u", "n": 1}))
    with pytest.raises(ValueError, match="github_username"):
        User.from_dict({"id": 1, "github_user_id": "1"})


def test_unknown_enum_values_are_kept_typed() -> None:
    hints = typing.get_type_hints(User)
    assert hints["role"] == UserRole | None  # editors complete UserRole's members
    assert typing.get_type_hints(AgentRun)["source_type"] == SourceType | None
    user = User.from_dict({"id": 1, "github_user_id": "1", "github_username": "u", "role": "OWNER"})
    assert isinstance(user.role, UserRole) and user.role == "OWNER" and str(user.role) == "OWNER"
    assert not user.role.is_known and UserRole.ADMIN.is_known
    assert user.to_dict()["role"] == "OWNER"
    assert UserRole("ADMIN") is UserRole.ADMIN
    assert pickle.loads(pickle.dumps(user.role)) == "OWNER"
    run = AgentRun.from_dict({"id": 1, "organization_id": 2, "source_type": "TEAMS"})
    assert run.source_type == "TEAMS" and isinstance(run.source_type, SourceType)
    round_trips(user)
    round_trips(run)


async def test_one_status_spelling_wherever_a_user_looks(call: Call, emu: EmulatorThread) -> None:
    started = await call("run", "Break something")
    emu.finish_run(started.id, "failed", "it broke")
    run = await call("get_run", started.id)
    assert run.status == "failed" and run.status != "ERROR"
    assert run.status_raw == "ERROR" == run.status.raw
    assert run.to_dict()["status"] == "ERROR"  # the wire form, for round trips
    shown = run.to_display_dict()
    assert (shown["status"], shown["status_raw"]) == ("failed", "ERROR")
    assert list(shown).index("status_raw") == list(shown).index("status") + 1
    assert json.loads(json.dumps(attrs.asdict(run)))["status"] == "failed"
    page = await call("list_runs", limit=5)
    assert {item["status"] for item in page.to_display_dict()["items"]} <= {
        "running",
        "completed",
        "failed",
        "cancelled",
        "pending",
        "paused",
    }
    round_trips(run)


def test_a_slack_token_rebuilt_from_its_dict_is_equal() -> None:
    token = SlackConnectToken.from_dict(
        {"token": "s3cr3t", "message": "m", "expires_in_minutes": 10}
    )
    round_trips(token)
    assert "s3cr3t" not in token._repr_html_()
    assert token.to_dict()["token"] == "s3cr3t"


HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


def test_html_escapes_server_text() -> None:
    run = AgentRun.from_dict(
        {
            "id": 1,
            "organization_id": 2,
            "status": "ERROR",
            "result": HOSTILE,
            "metadata": {"k": HOSTILE},
            HOSTILE: HOSTILE,
        }
    )
    html = run._repr_html_()
    assert "<script>" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html
    assert ">failed<" in html and ">ERROR<" in html and ">status_raw<" in html
    page = Page.from_dict(
        {"items": [run.to_dict()] * 3, "total": 7, "page": 1, "size": 3, "pages": 3}, AgentRun
    )
    html = page._repr_html_()
    assert "<script>" not in html and html.count("<tr>") == 4  # header + 3 rows
    assert "Page 1 of 3" in html and "3 AgentRuns of 7" in html
    empty = Page.from_dict({"items": [], "total": 0, "page": 1, "size": 10, "pages": 0})
    assert "0 items of 0" in empty._repr_html_()
