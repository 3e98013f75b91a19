"""``agent.with_raw_response.<method>(...)`` on both clients, against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from codegen_async import AsyncAgent, NotFoundError, Page, RawResponse, User
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent, RawResponses


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0, rate_limit="off") as emulator:
        yield emulator


def check_raw(raw: Any, plain: Any) -> None:
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers["content-type"] == raw.headers["Content-Type"] == "application/json"
    assert raw.request_id is not None and raw.request_id.startswith("req_emu_")
    assert raw.request_id == raw.headers["x-request-id"]
    assert raw.elapsed > 0
    assert raw.parse() == plain
    assert raw.parse() is raw.parse()  # built once
    assert raw.json() == plain.to_dict() if hasattr(plain, "to_dict") else raw.json() == plain


async def test_async_raw_responses(emu: EmulatorThread) -> None:
    async with AsyncAgent(**emu.client_kwargs()) as agent:
        check_raw(await agent.with_raw_response.get_current_user(), await agent.get_current_user())
        raw_page = await agent.with_raw_response.get_users(limit=3)
        page = raw_page.parse()
        assert isinstance(page, Page) and isinstance(page.items[0], User) and len(page) == 3
        raw = await agent.with_raw_response.request("GET", "/v1/users/me")
        assert raw.parse()["id"] == emu.user_id
        raw = await agent.with_raw_response.get_users(limit=2, extra_query={"skip": 1})
        assert raw.url.endswith("/users") and raw.method == "GET"
        with pytest.raises(NotFoundError) as info:
            await agent.with_raw_response.get_run(987654321)
        assert info.value.request_id is not None
        for many in ("wait_for_run", "iter_users", "run_and_wait", "aclose", "with_options"):
            with pytest.raises(AttributeError, match="one request"):
                getattr(agent.with_raw_response, many)
        assert agent.stats.requests == 6  # shared with the parent
        assert "get_run" in dir(agent.with_raw_response)
        assert (await agent.get_current_user()).id == emu.user_id  # the parent is unchanged


def test_blocking_raw_responses(emu: EmulatorThread) -> None:
    with Agent(**emu.client_kwargs()) as agent:
        assert isinstance(agent.with_raw_response, RawResponses)
        check_raw(agent.with_raw_response.get_current_user(), agent.get_current_user())
        page = agent.with_raw_response.get_users(limit=3).parse()
        assert isinstance(page, Page) and len(page) == 3
        assert agent.with_raw_response.request("GET", "/v1/users/me").parse()["id"] == emu.user_id
        with pytest.raises(NotFoundError) as info:
            agent.with_raw_response.get_run(987654321)
        assert info.value.request_id is not None
        with pytest.raises(AttributeError, match="one request"):
            agent.with_raw_response.wait_for_run  # noqa: B018
        derived = agent.with_options(max_retries=0)
        assert derived.with_raw_response.get_current_user().parse().id == emu.user_id
