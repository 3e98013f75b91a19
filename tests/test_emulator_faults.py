"""Fault injection: every kind, seen from plain aiohttp and from the SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import aiohttp
import pytest

from codegen_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncAgent,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RateLimits,
)
from codegen_async._endpoints import ENDPOINTS
from codegen_async.emulator import FAULT_KINDS, Emulator

LONG = (10_000.0, 10_000.0)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=0.01, run_duration=LONG, rate_limit="off") as emulator:
        yield emulator


@pytest.fixture
async def agent(emu: Emulator, no_backoff: None) -> AsyncIterator[AsyncAgent]:
    async with emu.client(rate_limits=RateLimits.disabled(), max_retries=2) as client:
        yield client


@pytest.fixture
async def fresh(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A session that opens a new connection per request and never resends one."""
    connector = aiohttp.TCPConnector(force_close=True)
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(emu.base_url, connector=connector, headers=headers) as s:
        yield s


def me_path() -> str:
    return ENDPOINTS["get_current_user"].path


async def test_status_fault_with_retry_after_seconds(
    emu: Emulator, fresh: aiohttp.ClientSession
) -> None:
    emu.inject_fault("get_current_user", "status", status=503, retry_after=1.5)
    async with fresh.get(me_path()) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1.500"
        assert await resp.json() == {"message": "Service unavailable", "status_code": 503}
    async with fresh.get(me_path()) as resp:  # the fault was used up
        assert resp.status == 200
    stats = emu.stats()
    assert stats["faults_triggered"] == {"status": 1}
    assert stats["responses"] == {"200": 1, "503": 1}


async def test_status_fault_with_an_http_date(emu: Emulator, fresh: aiohttp.ClientSession) -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    emu.inject_fault("get_users", "status", status=429, retry_after=when)
    async with fresh.get(f"/v1/organizations/{emu.org_id}/users") as resp:
        assert resp.status == 429 and resp.headers["Retry-After"] == when
        assert (await resp.json())["message"] == "Rate limit exceeded. Please try again later."


async def test_status_faults_use_the_operations_own_messages(
    emu: Emulator, agent: AsyncAgent
) -> None:
    emu.inject_fault("get_run", "status", status=404)
    with pytest.raises(NotFoundError) as info:
        await agent.get_run(1)
    assert info.value.message == "Agent run not found."


async def test_sdk_retries_a_transient_error_on_a_read(emu: Emulator, agent: AsyncAgent) -> None:
    emu.inject_fault("get_current_user", "status", status=502, count=2)
    assert (await agent.get_current_user()).id == emu.user_id
    assert agent.stats.retries == 2
    assert emu.stats()["requests"][ENDPOINTS["get_current_user"].route] == 3


async def test_sdk_does_not_retry_a_creating_call_after_a_500(
    emu: Emulator, agent: AsyncAgent
) -> None:
    emu.inject_fault("run", "status", status=500)
    with pytest.raises(InternalServerError):
        await agent.run("once")
    assert emu.stats()["requests"][ENDPOINTS["run"].route] == 1
    assert emu.stats()["runs_created"] == 0


async def test_sdk_retries_a_429_even_on_a_creating_call(emu: Emulator, agent: AsyncAgent) -> None:
    emu.inject_fault("run", "status", status=429, retry_after=0.01)
    run = await agent.run("after a 429")
    assert run.id and agent.stats.rate_limited == 1
    emu.inject_fault("run", "status", status=429, retry_after=0.01, count=3)
    with pytest.raises(RateLimitError) as info:
        await agent.run("gives up")
    assert info.value.retry_after == pytest.approx(0.01)


async def test_hang_trips_the_client_timeout(emu: Emulator) -> None:
    emu.inject_fault("get_current_user", "hang", delay=5.0)
    async with emu.client(timeout=0.2, max_retries=0) as agent:
        with pytest.raises(APITimeoutError):
            await agent.get_current_user()
    emu.inject_fault("get_current_user", "hang", delay=0.05)
    async with emu.client() as agent:  # a short hang is only slow
        assert (await agent.get_current_user()).id == emu.user_id


async def test_drop_before_action_creates_nothing(
    emu: Emulator, agent: AsyncAgent, fresh: aiohttp.ClientSession
) -> None:
    emu.inject_fault("run", "drop_before_action")
    with pytest.raises(APIConnectionError):
        await agent.run("lost")
    assert emu.stats()["runs_created"] == 0
    assert emu.stats()["dropped_connections"] == 1
    emu.inject_fault("run", "drop_before_action")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with fresh.post(f"/v1/organizations/{emu.org_id}/agent/run", json={"prompt": "x"}):
            pass


async def test_drop_after_action_creates_the_run(emu: Emulator, agent: AsyncAgent) -> None:
    before = len(emu.state.runs)
    emu.inject_fault("run", "drop_after_action")
    with pytest.raises(APIConnectionError):
        await agent.run("created, but the answer is lost")
    assert emu.stats()["runs_created"] == 1
    assert len(emu.state.runs) == before + 1
    newest = (await agent.list_runs(limit=1)).items[0]
    assert emu.run_info(newest.id)["prompt"] == "created, but the answer is lost"


async def test_aiohttp_resends_a_dropped_read_once(emu: Emulator) -> None:
    # aiohttp itself resends an idempotent request once after the server hangs up, so a
    # single dropped GET goes unnoticed; it takes two to surface the error.
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(emu.base_url, headers=headers) as session:
        emu.inject_fault("get_current_user", "drop_before_action")
        async with session.get(me_path()) as resp:
            assert resp.status == 200
        emu.inject_fault("get_current_user", "drop_before_action", count=2)
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.get(me_path()):
                pass
    assert emu.stats()["dropped_connections"] == 3


async def test_truncate(emu: Emulator, agent: AsyncAgent, fresh: aiohttp.ClientSession) -> None:
    emu.inject_fault("get_current_user", "truncate")
    async with fresh.get(me_path()) as resp:
        assert resp.status == 200
        assert resp.content_length is not None
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    emu.inject_fault("get_current_user", "truncate", count=3)
    with pytest.raises(APIConnectionError):
        await agent.get_current_user()


async def test_non_json(emu: Emulator, agent: AsyncAgent, fresh: aiohttp.ClientSession) -> None:
    emu.inject_fault("get_current_user", "non_json")
    async with fresh.get(me_path()) as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        with pytest.raises(ValueError):
            await resp.json(content_type=None)
    emu.inject_fault("get_current_user", "non_json")
    with pytest.raises(APIResponseValidationError) as info:
        await agent.get_current_user()
    assert "not JSON" in str(info.value)


async def test_html_proxy_page(
    emu: Emulator, agent: AsyncAgent, fresh: aiohttp.ClientSession
) -> None:
    emu.inject_fault("get_users", "html")
    async with fresh.get(f"/v1/organizations/{emu.org_id}/users") as resp:
        assert resp.status == 502 and resp.content_type == "text/html"
        assert "<title>502 Bad Gateway</title>" in await resp.text()
    emu.inject_fault("get_users", "html", status=504, count=3)
    with pytest.raises(InternalServerError) as info:
        await agent.get_users()
    assert info.value.status_code == 504 and "HTML" in info.value.message


@pytest.mark.parametrize(
    ("name", "call", "field"),
    [
        ("get_current_user", lambda a: a.get_current_user(), "$.id"),
        ("get_users", lambda a: a.get_users(), "$.total"),
        ("run", lambda a: a.run("x"), "$.id"),
        ("get_mcp_providers", lambda a: a.get_mcp_providers(), "$[0].id"),
    ],
)
async def test_wrong_shape(
    emu: Emulator, agent: AsyncAgent, name: str, call: Any, field: str
) -> None:
    emu.inject_fault(name, "wrong_shape")
    with pytest.raises(APIResponseValidationError) as info:
        await call(agent)
    assert info.value.path is not None and info.value.path.startswith(field)


async def test_wildcard_and_counts(emu: Emulator, agent: AsyncAgent) -> None:
    emu.inject_fault("*", "status", status=500, count=2)
    emu.inject_fault("get_users", "status", status=503)
    with pytest.raises(InternalServerError) as first:
        await agent.get_users()  # 503 (its own fault first), then 500 and 500 (the wildcard)
    assert first.value.status_code == 500 and agent.stats.retries == 2
    assert (await agent.get_current_user()).id == emu.user_id
    assert emu.stats()["faults_triggered"] == {"status": 3}
    assert emu.stats()["faults_pending"] == []


async def test_clear_faults(emu: Emulator, agent: AsyncAgent) -> None:
    emu.inject_fault("get_current_user", "status", count=5)
    emu.inject_fault("get_users", "status", count=5)
    emu.clear_faults("get_current_user")
    assert (await agent.get_current_user()).id == emu.user_id
    emu.clear_faults()
    assert (await agent.get_users()).total == 30


def test_bad_faults_are_refused() -> None:
    emu = Emulator()
    for args, kwargs in (
        (("nope", "status"), {}),
        (("get_run", "explode"), {}),
        (("get_run", "status"), {"count": 0}),
        (("get_run", "status"), {"status": 99}),
        (("get_run", "hang"), {"delay": -1}),
    ):
        with pytest.raises(ValueError):
            emu.inject_fault(*args, **kwargs)
    with pytest.raises(TypeError):
        emu.inject_fault("get_run", "status", retry_after=[1])  # type: ignore[arg-type]
    kinds = {"status", "hang", "drop_before_action", "drop_after_action", "truncate"}
    assert kinds | {"non_json", "html", "wrong_shape"} == FAULT_KINDS


async def test_faults_over_http(emu: Emulator, fresh: aiohttp.ClientSession) -> None:
    async with aiohttp.ClientSession(emu.base_url) as admin:
        async with admin.post(
            "/_emulator/faults",
            json={"operation": "get_current_user", "kind": "status", "status": 500, "count": 2},
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["fault"]["remaining"] == 2
        async with admin.post(
            "/_emulator/faults", json={"operation": "x", "kind": "status"}
        ) as resp:
            assert resp.status == 422
        async with admin.post("/_emulator/faults", json={"kind": "status"}) as resp:
            assert resp.status == 422
        async with fresh.get(me_path()) as resp:
            assert resp.status == 500
        async with admin.get("/_emulator/faults") as resp:
            assert (await resp.json())["pending"][0]["remaining"] == 1
        async with admin.delete("/_emulator/faults") as resp:
            assert (await resp.json())["pending"] == []
        async with fresh.get(me_path()) as resp:
            assert resp.status == 200


async def test_stop_returns_after_the_handlers_of_hung_requests_ended() -> None:
    # Issue 14 (smaller ones): a client that gave up on a hung request closed its connection,
    # so aiohttp's shutdown no longer saw the handler; stop() returned with it still asleep.
    emulator = Emulator(time_scale=0.01, rate_limit="off")
    await emulator.start()
    emulator.inject_fault("get_current_user", "hang", delay=30.0, count=2)
    headers = {"Authorization": f"Bearer {emulator.token}"}
    async with aiohttp.ClientSession(emulator.base_url, headers=headers) as session:

        async def call(timeout: float) -> None:
            client_timeout = aiohttp.ClientTimeout(total=timeout)
            async with session.get(me_path(), timeout=client_timeout) as resp:
                await resp.read()

        with pytest.raises(asyncio.TimeoutError):
            await call(0.3)  # gives up: its connection is closed, its handler still hangs
        still_waiting = asyncio.create_task(call(60.0))  # hangs while the emulator stops
        for _ in range(500):
            if emulator.stats()["in_flight"] == 2:
                break
            await asyncio.sleep(0.01)
        assert emulator.stats()["in_flight"] == 2
        await emulator.stop()
        # Every handler has ended by the time stop() returns.
        assert emulator.stats()["in_flight"] == 0
        result = await asyncio.gather(still_waiting, return_exceptions=True)
    assert isinstance(result[0], aiohttp.ClientError), result
