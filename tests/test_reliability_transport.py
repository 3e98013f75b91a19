"""Regression tests for the transport and configuration defects of issue 14 (and 17 #7).

Each test failed before its fix; the issue's numbers are in the test names' docstrings.
Servers that misbehave (hang, bomb, echo the token) are the loopback recording server.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import time
import tracemalloc

import pytest
from aiohttp import web
from aioresponses import aioresponses

from codegen_async import (
    APIResponseValidationError,
    APITimeoutError,
    AsyncAgent,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    RateLimits,
    Timeout,
    UnprocessableEntityError,
)
from codegen_async._transport import TransportStats, _WaitClock
from codegen_sync import Agent

from .conftest import BASE, ORG, TOKEN
from .recording_server import PAGE, RecordingServer, hang


# --- #4: response bodies have a size limit -----------------------------------------------------
def _bomb(decoded_mib: int) -> bytes:
    # A JSON string of zeros: valid JSON once inflated, ~1000x smaller compressed.
    return gzip.compress(b'{"id": 1, "x": "' + b"0" * (decoded_mib << 20) + b'"}', 9)


async def test_a_gzip_bomb_is_refused_without_inflating_in_memory(server: RecordingServer) -> None:
    """Issue 14 #4: a 0.4 MB gzip answer took RSS from 42 MB to 1.3 GB."""
    bomb = _bomb(256)

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    server.handler = answer
    async with AsyncAgent(
        TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled()
    ) as agent:
        tracemalloc.start()
        try:
            with pytest.raises(APIResponseValidationError, match="max_response_bytes") as info:
                await agent.get_current_user()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert info.value.status_code == 200
    assert peak < 100 << 20  # the default limit (32 MiB) plus slack, never the 256 MiB


async def test_the_body_limit_is_configurable(server: RecordingServer) -> None:
    big = b'{"id": 1, "github_user_id": "9", "github_username": "' + b"a" * 5000 + b'"}'

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=big, content_type="application/json")

    server.handler = answer
    async with AsyncAgent(
        TOKEN,
        ORG,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
        max_response_bytes=1000,
    ) as agent:
        with pytest.raises(APIResponseValidationError, match="1,000 bytes"):
            await agent.get_current_user()
        assert server.requests and len(server.requests) == 1  # not retried
        unlimited = AsyncAgent(TOKEN, ORG, base_url=server.base_url, max_response_bytes=None)
        async with unlimited:
            assert (await unlimited.get_current_user()).id == 1
        # Up to the limit exactly, with or without a known length, the answer is read.
        for size in (len(big) - 1, len(big)):
            async with AsyncAgent(
                TOKEN, ORG, base_url=server.base_url, max_response_bytes=size
            ) as tight:
                if size < len(big):
                    with pytest.raises(APIResponseValidationError):
                        await tight.get_current_user()
                else:
                    assert (await tight.get_current_user()).id == 1
    with pytest.raises(ValueError, match="max_response_bytes"):
        AsyncAgent(TOKEN, ORG, max_response_bytes=0)


# --- #10: non-finite or negative timeouts are refused where given -------------------------------
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, -1, 0])
def test_non_finite_or_negative_seconds_are_refused(bad: float) -> None:
    """Issue 14 #10: timeout=inf was accepted, then every call raised a bare OverflowError."""
    with pytest.raises(ValueError, match="timeout"):
        AsyncAgent(TOKEN, ORG, timeout=bad)
    with pytest.raises(ValueError, match="timeout"):
        Agent(TOKEN, ORG, timeout=bad)
    with pytest.raises(ValueError, match="timeout"):
        Timeout(total=bad)
    with pytest.raises(ValueError, match="timeout"):
        Timeout(connect=bad)
    with pytest.raises(ValueError, match="deadline"):
        AsyncAgent(TOKEN, ORG, deadline=bad)
    with pytest.raises(ValueError, match="timeout"):
        AsyncAgent(TOKEN, ORG).with_options(timeout=bad)


async def test_per_call_seconds_are_checked_before_any_request(agent: AsyncAgent) -> None:
    with aioresponses():  # any request would fail as unmocked
        for bad in (math.inf, math.nan, -1):
            with pytest.raises(ValueError, match="timeout"):
                await agent.get_current_user(timeout=bad)
            with pytest.raises(ValueError, match="deadline"):
                await agent.get_current_user(deadline=bad)


# --- #12: a base_url that cannot work is refused at construction -------------------------------
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://user:hunter2@api.example.test", "credentials"),
        ("https://:hunter2@api.example.test", "credentials"),
        ("https://api.example.test:99999", "port"),
        ("https://api.example.test:0", "port"),
        ("https://api.example.test/?x=1", "query"),
        ("https://api.example.test/#frag", "fragment"),
        ("https://api.example.test?", "query"),
    ],
)
def test_a_base_url_that_cannot_work_is_refused(url: str, why: str) -> None:
    """Issue 14 #12: credentials (shown in reprs), port 99999, a query string were accepted."""
    for cls in (AsyncAgent, Agent):
        with pytest.raises(ConfigurationError, match=why) as info:
            cls(TOKEN, ORG, base_url=url)
        assert "hunter2" not in str(info.value)


# --- #13: closing a client ends its calls in flight at once, with one typed error ----------------
async def test_closing_ends_calls_in_flight_with_one_typed_error(server: RecordingServer) -> None:
    """Issue 14 #13: in-flight GETs were retried on the closed session (bare RuntimeError)."""

    server.handler = hang
    agent = AsyncAgent(TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled())
    calls = [asyncio.ensure_future(agent.get_users()) for _ in range(3)]
    while len(server.requests) < 3:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await agent.aclose()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert time.monotonic() - started < 5
    for result in results:
        assert isinstance(result, ClientClosedError), repr(result)
        assert "closed" in str(result)
    assert agent.stats.retries == 0 and agent.stats.requests == 3
    with pytest.raises(ClientClosedError):  # and still a RuntimeError, as before
        await agent.get_users()


async def test_closing_ends_a_backoff_pause_at_once(server: RecordingServer) -> None:
    async def busy(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "busy"}, status=503, headers={"Retry-After": "30"})

    server.handler = busy
    agent = AsyncAgent(TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled())
    call = asyncio.ensure_future(agent.get_users())
    while not server.requests:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # now in the 30 s pause before the retry
    started = time.monotonic()
    await agent.aclose()
    with pytest.raises(ClientClosedError):
        await call
    assert time.monotonic() - started < 5
    assert len(server.requests) == 1


# --- #15: a token the server echoes back is masked in the error -----------------------------------
async def test_a_server_echoed_token_is_masked_in_the_error(
    client: AsyncAgent, server: RecordingServer
) -> None:
    """Issue 14 #15: a 401 body 'Invalid API token: <token>' ended up in str(exc) and .body."""

    async def echo(request: web.Request) -> web.StreamResponse:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        return web.json_response(
            {"detail": f"Invalid API token: {token}"},
            status=401,
            headers={"WWW-Authenticate": f'Bearer error="{token}"'},
        )

    server.handler = echo
    with pytest.raises(AuthenticationError) as info:
        await client.get_current_user()
    error = info.value
    for text in (str(error), error.message, repr(error.body), repr(dict(error.headers))):
        assert TOKEN not in text
    assert "Invalid API token: <redacted>" in error.message

    async def echo_text(request: web.Request) -> web.StreamResponse:
        return web.Response(text=f"<html>token {TOKEN} refused</html>", status=200)

    server.handler = echo_text
    with pytest.raises(APIResponseValidationError) as bad:
        await client.get_current_user()
    assert TOKEN not in str(bad.value) and TOKEN not in repr(bad.value.body)


# --- smaller ones ---------------------------------------------------------------------------------
async def test_a_422_whose_msg_is_null_says_what_it_knows(agent: AsyncAgent) -> None:
    """Issue 14, smaller: a 422 body whose msg is null gave the message '422 None'."""
    detail = [{"loc": ["query", "limit"], "msg": None, "type": "value_error"}]
    with aioresponses() as mock:
        mock.get(f"{BASE}/v1/users/me", status=422, payload={"detail": detail})
        with pytest.raises(UnprocessableEntityError) as info:
            await agent.get_current_user()
    assert "None" not in str(info.value)
    assert "query.limit: value_error" in str(info.value)
    assert info.value.errors[0].msg == ""


async def test_iteration_stops_when_a_page_brings_nothing_new(agent: AsyncAgent) -> None:
    """Issue 14, smaller: a server repeating one page made 500 requests to yield 1 item."""
    page = {**PAGE, "total": 50_000}
    with aioresponses() as mock:
        mock.get(f"{BASE}/v1/organizations/{ORG}/users?skip=0&limit=100", payload=page)
        mock.get(f"{BASE}/v1/organizations/{ORG}/users?skip=1&limit=100", payload=page, repeat=True)
        users = [user async for user in agent.iter_users()]
        requests = sum(len(calls) for calls in mock.requests.values())
    assert [user.id for user in users] == [1]
    assert requests == 2


async def test_list_runs_refuses_a_negative_user_id(agent: AsyncAgent) -> None:
    """Issue 14, smaller: list_runs(user_id=-1) was sent (other ids are checked)."""
    with aioresponses(), pytest.raises(ValueError, match="user_id"):
        await agent.list_runs(user_id=-1)


# --- issue 17 #7: messages that said less than they knew ------------------------------------------
async def test_a_timeout_after_retries_says_how_many_attempts(server: RecordingServer) -> None:
    server.handler = hang
    async with AsyncAgent(
        TOKEN,
        ORG,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
        timeout=0.3,
        max_retries=2,
    ) as agent:
        with pytest.raises(APITimeoutError, match=r"within 0\.3s \(3 attempts\)"):
            await agent.get_current_user()
        with pytest.raises(APITimeoutError) as once:
            await agent.with_options(max_retries=0).get_current_user()
        assert "attempts" not in str(once.value)


def test_the_wall_clock_of_quota_waits_counts_overlaps_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17 #7: 15 calls held together for 6 s were reported as 90 s only."""
    stats = TransportStats()
    clock = _WaitClock(stats)
    now = [100.0]
    monkeypatch.setattr("codegen_async._transport.time.monotonic", lambda: now[0])
    for _ in range(15):  # fifteen calls, all held from 94 to 100
        clock.add(6.0)
    assert stats.rate_limit_wall_seconds == pytest.approx(6.0)
    now[0] = 110.0
    clock.add(2.0)  # 108..110: apart from the first span
    assert stats.rate_limit_wall_seconds == pytest.approx(8.0)
    now[0] = 111.0
    clock.add(20.0)  # 91..111 covers everything so far
    assert stats.rate_limit_wall_seconds == pytest.approx(20.0)


class _CountingLimiter:
    """A limiter that grants at once and counts what it was asked."""

    def __init__(self) -> None:
        self.acquired = 0
        self.released = 0

    async def acquire(self, deadline: float | None = None) -> float:
        self.acquired += 1
        await asyncio.sleep(0.05)  # the deadline passes while the slot is being granted
        return 0.05

    def release(self) -> None:
        self.released += 1

    def penalize(self, seconds: float) -> None:
        pass


async def test_a_slot_taken_when_the_deadline_has_passed_is_given_back(
    client: AsyncAgent,
) -> None:
    limiter = _CountingLimiter()
    client._transport._shared.limiters["get_current_user"] = limiter
    with pytest.raises(APITimeoutError, match="deadline"):
        await client.get_current_user(deadline=0.01)
    assert limiter.acquired == 1 and limiter.released == 1
    assert client.stats.requests == 0  # nothing was sent
