"""Per-call options and with_options(), on both clients (issue 15 #3 and #5, issue 14 #8).

The exact requests are checked against a recording server on loopback (tests/
recording_server.py), which both the asyncio and the blocking client can reach.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from typing import Any

import pytest
from aiohttp import web

from codegen_async import (
    NOT_GIVEN,
    APITimeoutError,
    AsyncAgent,
    ConfigurationError,
    InternalServerError,
    NotGiven,
    RateLimitError,
    RateLimits,
    Timeout,
)
from codegen_async._endpoints import ENDPOINTS, Quota
from codegen_sync import Agent

from .conftest import ORG, TOKEN
from .recording_server import RecordingServer, answer_user, hang

CALL_OPTIONS = ("timeout", "deadline", "extra_headers", "extra_query")


def _sync(server: RecordingServer, **kwargs: Any) -> Agent:
    return Agent(TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled(), **kwargs)


# --- the surface ---------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [AsyncAgent, Agent])
def test_every_operation_takes_the_call_options(cls: type[Any]) -> None:
    for name, endpoint in ENDPOINTS.items():
        params = inspect.signature(getattr(cls, name)).parameters
        for option in CALL_OPTIONS:
            assert option in params, f"{cls.__name__}.{name} lacks {option}="
            assert params[option].kind is inspect.Parameter.KEYWORD_ONLY
        # A body field can be added only where the operation has a body.
        assert ("extra_body" in params) == (endpoint.body is not None), name
    iterators = [name for name in dir(cls) if name.startswith("iter_")]
    assert len(iterators) == 5
    for name in iterators:  # each page's request takes them
        params = inspect.signature(getattr(cls, name)).parameters
        assert all(option in params for option in CALL_OPTIONS), name


# --- extra headers, query and body -----------------------------------------------------------
async def test_extra_values_are_sent_as_given_and_win(
    client: AsyncAgent, server: RecordingServer
) -> None:
    await client.get_users(
        skip=0,
        limit=5,
        extra_query={"limit": 7, "new_filter": "x", "flag": True, "tag": ["a", "b"]},
        extra_headers={"X-Trace": "t-1", "accept": "application/x-test"},
    )
    request = server.requests[-1]
    assert ("limit", "7") in request.query and ("limit", "5") not in request.query
    assert ("new_filter", "x") in request.query and ("flag", "true") in request.query
    assert [v for k, v in request.query if k == "tag"] == ["a", "b"]
    assert request.headers["X-Trace"] == "t-1"
    assert request.headers["Accept"] == "application/x-test"  # one Accept, the caller's
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"

    await client.run("hello", extra_body={"prompt": "override", "new_field": {"a": 1}})
    body = json.loads(server.requests[-1].body)
    assert body == {"prompt": "override", "new_field": {"a": 1}}
    assert server.requests[-1].headers["Content-Type"] == "application/json"


async def test_plain_calls_send_what_they_sent_before(
    client: AsyncAgent, server: RecordingServer
) -> None:
    await client.get_users(limit=5)
    request = server.requests[-1]
    assert request.query == [("skip", "0"), ("limit", "5")]
    assert "X-Trace" not in request.headers


async def test_the_token_cannot_be_replaced_by_accident(client: AsyncAgent) -> None:
    for spelling in ("Authorization", "authorization", "AUTHORIZATION"):
        with pytest.raises(ValueError, match="token"):
            await client.get_current_user(extra_headers={spelling: "Bearer other"})
        with pytest.raises(ConfigurationError, match="token"):
            AsyncAgent(TOKEN, ORG, default_headers={spelling: "Bearer other"})
        with pytest.raises(ValueError, match="token"):
            client.with_options(default_headers={spelling: "Bearer other"})


async def test_extra_values_are_checked(client: AsyncAgent) -> None:
    with pytest.raises(ValueError, match="line breaks"):
        await client.get_current_user(extra_headers={"X-A": "a\r\nX-Injected: 1"})
    with pytest.raises(TypeError, match="extra_query"):
        await client.get_current_user(extra_query={"a": object()})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="JSON"):
        await client.run("x", extra_body={"a": float("nan")})
    # Known parameters are checked as before, whatever the extras.
    with pytest.raises(ValueError, match="limit"):
        await client.get_users(limit=0, extra_query={"limit": 5})


async def test_default_headers_go_with_every_call(server: RecordingServer) -> None:
    async with AsyncAgent(
        TOKEN,
        ORG,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
        default_headers={"X-Team": "infra", "User-Agent": "my-app/1.0"},
    ) as agent:
        await agent.get_current_user()
        await agent.run("x")
    for request in server.requests:
        assert request.headers["X-Team"] == "infra"
        assert request.headers["User-Agent"] == "my-app/1.0"


def test_the_blocking_client_sends_the_extras(server: RecordingServer) -> None:
    with _sync(server, default_headers={"X-Team": "infra"}) as agent:
        agent.run("x", extra_body={"new_field": 1}, extra_headers={"X-Trace": "s"})
        agent.get_users(extra_query={"q": "1"})
    run, users = server.requests[-2:]
    assert json.loads(run.body)["new_field"] == 1
    assert run.headers["X-Trace"] == "s" and run.headers["X-Team"] == "infra"
    assert ("q", "1") in users.query


# --- with_options ----------------------------------------------------------------------------
async def test_with_options_shares_the_connections(
    client: AsyncAgent, server: RecordingServer
) -> None:
    await client.get_current_user()
    quick = client.with_options(timeout=3, max_retries=0, default_headers={"X-Site": "a"})
    assert isinstance(quick, AsyncAgent)
    await quick.get_current_user()
    assert quick._transport._shared is client._transport._shared  # one session, limiters
    assert quick.stats is client.stats and client.stats.requests == 2
    assert quick._poller() is client._poller()
    assert server.requests[-1].headers["X-Site"] == "a"
    assert "X-Site" not in server.requests[0].headers
    assert quick._config.max_retries == 0 and client._config.max_retries == 2
    # Options of a derived client add up; None keeps the parent's.
    again = quick.with_options(default_headers={"X-Other": "b"})
    assert again._config.default_headers == {"X-Site": "a", "X-Other": "b"}
    assert again._config.timeout.total == 3


async def test_closing_a_derived_client_closes_what_it_shares(server: RecordingServer) -> None:
    parent = AsyncAgent(TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled())
    child = parent.with_options(deadline=5)
    await child.get_current_user()
    await child.aclose()
    assert parent._transport.closed


def test_with_options_on_the_blocking_client(server: RecordingServer) -> None:
    with _sync(server) as agent:
        agent.get_current_user()
        quick = agent.with_options(deadline=5, default_headers={"X-Site": "s"})
        assert isinstance(quick, Agent)
        quick.get_current_user()
        assert quick.stats is agent.stats and agent.stats.requests == 2
        assert server.requests[-1].headers["X-Site"] == "s"
        del quick  # dropping a derived client closes nothing
        agent.get_current_user()


def test_with_options_does_not_keep_its_parent_from_working_when_chained(
    server: RecordingServer,
) -> None:
    agent = _sync(server).with_options(timeout=5)  # the parent is only referenced by it
    try:
        agent.get_current_user()
        agent.get_current_user()
    finally:
        agent.close()


# --- deadline --------------------------------------------------------------------------------
async def test_deadline_does_not_sleep_a_retry_after_that_cannot_fit(
    client: AsyncAgent, server: RecordingServer
) -> None:
    async def busy(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "busy"}, status=503, headers={"Retry-After": "20"})

    server.handler = busy
    started = time.monotonic()
    with pytest.raises(InternalServerError):
        await client.get_users(timeout=2, deadline=2)
    assert time.monotonic() - started < 10  # not the 20 s the server asked for
    assert len(server.requests) == 1


async def test_deadline_raises_the_429_at_once_with_its_retry_after(
    client: AsyncAgent, server: RecordingServer
) -> None:
    async def limited(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"message": "slow down"}, status=429, headers={"Retry-After": "20"}
        )

    server.handler = limited
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        await client.get_current_user(deadline=3)
    assert time.monotonic() - started < 10
    assert info.value.retry_after == 20


async def test_deadline_bounds_every_attempt_and_the_pauses(server: RecordingServer) -> None:
    server.handler = hang
    async with AsyncAgent(
        TOKEN,
        ORG,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
        timeout=20,
        deadline=1,  # the client's default, for every call
    ) as agent:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline of 1s"):
            await agent.get_current_user()
        assert time.monotonic() - started < 8


def test_deadline_on_the_blocking_client(server: RecordingServer) -> None:
    server.handler = hang
    with _sync(server) as agent:
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            agent.get_current_user(deadline=0.5)
        assert time.monotonic() - started < 8
        with pytest.raises(APITimeoutError, match="deadline"):
            agent.with_options(deadline=0.5).get_current_user()


# --- deadline and the quota wait ---------------------------------------------------------------
def _one_a_minute() -> RateLimits:
    return RateLimits.documented().replace(get_current_user=Quota(1, 60.0))


async def test_a_quota_wait_that_cannot_fit_the_deadline_is_not_slept(
    server: RecordingServer,
) -> None:
    """Issue 14 #8: the 6th call of a 5-a-minute route blocked ~60 s whatever its timeout."""
    async with AsyncAgent(
        TOKEN, ORG, base_url=server.base_url, rate_limits=_one_a_minute()
    ) as agent:
        await agent.get_current_user()
        started = time.monotonic()
        with pytest.raises(RateLimitError) as info:
            await agent.get_current_user(deadline=2)
        assert time.monotonic() - started < 1.5  # at once, not after the 2 s
        assert info.value.retry_after is not None and 50 < info.value.retry_after <= 61
        assert "deadline" in str(info.value)
        assert len(server.requests) == 1  # nothing sent for the refused call
        # A wait that fits is waited as before.
        fits = agent.with_options(deadline=120)
        assert fits._config.deadline == 120


def test_a_quota_wait_that_cannot_fit_on_the_blocking_client(server: RecordingServer) -> None:
    with Agent(TOKEN, ORG, base_url=server.base_url, rate_limits=_one_a_minute()) as agent:
        agent.get_current_user()
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            agent.get_current_user(deadline=2)
        with pytest.raises(RateLimitError):
            agent.with_options(deadline=2).get_current_user()
        assert time.monotonic() - started < 3


async def test_a_429_whose_retry_after_cannot_fit_is_raised_as_the_server_said(
    server: RecordingServer,
) -> None:
    async def limited(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"message": "Rate limit exceeded"}, status=429, headers={"Retry-After": "20"}
        )

    server.handler = limited
    async with AsyncAgent(TOKEN, ORG, base_url=server.base_url) as agent:  # limiter on
        started = time.monotonic()
        with pytest.raises(RateLimitError, match="Rate limit exceeded") as info:
            await agent.get_current_user(deadline=3)
        assert time.monotonic() - started < 2.5
        assert info.value.retry_after == 20 and len(server.requests) == 1


async def test_header_names_merge_whatever_their_letter_case(server: RecordingServer) -> None:
    async with AsyncAgent(
        TOKEN,
        ORG,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
        default_headers={"X-Team": "a", "content-type": "application/vnd.test+json"},
    ) as agent:
        child = agent.with_options(default_headers={"x-team": "b"})
        await child.run("x", extra_headers={"X-TEAM": "c"})
        await child.run("x")
    with_extra, plain = server.requests
    assert with_extra.headers["X-Team"] == "c" and plain.headers["X-Team"] == "b"
    for request in server.requests:  # one of each, never both spellings
        names = [name.lower() for name in request.headers]
        assert names.count("x-team") == 1 and names.count("content-type") == 1
        # A default header wins over the SDK's own, as an extra one does.
        assert request.headers["Content-Type"] == "application/vnd.test+json"


async def test_iterations_send_the_call_options_with_every_page(
    client: AsyncAgent, server: RecordingServer
) -> None:
    users = [u async for u in client.iter_users(extra_headers={"X-Trace": "it"}, timeout=5)]
    assert [u.id for u in users] == [1]
    assert server.requests and all(r.headers["X-Trace"] == "it" for r in server.requests)
    with pytest.raises(ValueError, match="deadline"):
        client.iter_runs(deadline=float("inf"))  # checked at once, not at the first page


@pytest.mark.parametrize("value", ["5", True, [1]])
@pytest.mark.parametrize("where", ["client", "with_options", "call", "timeout"])
async def test_a_duration_of_the_wrong_type_is_a_type_error(where: str, value: Any) -> None:
    """README: a wrong type raises TypeError (a wrong value ValueError), naming the argument."""
    agent = AsyncAgent(TOKEN, ORG, rate_limits=RateLimits.disabled())

    async def attempt() -> None:
        if where == "client":
            AsyncAgent(TOKEN, ORG, deadline=value)
        elif where == "with_options":
            agent.with_options(deadline=value)
        elif where == "call":
            await agent.get_current_user(deadline=value)
        else:
            await agent.get_current_user(timeout=value)

    try:
        with pytest.raises(TypeError, match=r"deadline|timeout"):
            await attempt()
    finally:
        await agent.aclose()


def test_authorization_in_with_options_default_headers_is_a_configuration_error() -> None:
    """As in the constructor (README errors table): ConfigurationError, for both clients."""
    agent = AsyncAgent(TOKEN, ORG, rate_limits=RateLimits.disabled())
    with pytest.raises(ConfigurationError, match="Authorization"):
        agent.with_options(default_headers={"Authorization": "Bearer other"})
    with Agent(TOKEN, ORG) as blocking, pytest.raises(ConfigurationError, match="Authorization"):
        blocking.with_options(default_headers={"Authorization": "Bearer other"})


# --- None removes a limit; an omitted argument keeps it (as openai-python) ----------------------
async def _slow(request: web.Request) -> web.StreamResponse:
    """Answers after 1.5 s: past a 0.5 s limit, well within no limit."""
    await asyncio.sleep(1.5)
    return await answer_user(request)


def _limited(server: RecordingServer) -> AsyncAgent:
    return AsyncAgent(
        TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled(),
        timeout=0.5, deadline=0.5, max_retries=0,
    )  # fmt: skip


async def test_with_options_none_removes_the_parents_deadline_and_timeout(
    server: RecordingServer,
) -> None:
    server.handler = _slow
    async with _limited(server) as parent:
        with pytest.raises(APITimeoutError):
            await parent.get_current_user()
        kept = parent.with_options(max_retries=0)  # omitted: the parent's limits
        assert kept._config.deadline == 0.5 and kept._config.timeout.total == 0.5
        with pytest.raises(APITimeoutError):
            await kept.get_current_user()
        free = parent.with_options(deadline=None, timeout=None)
        assert free._config.deadline is None
        assert free._config.timeout == Timeout(total=None, connect=None)
        assert (await free.get_current_user()).id == 1
        # A grandchild keeps what its parent removed, unless told otherwise.
        assert free.with_options(max_retries=1)._config.deadline is None
        assert free.with_options(deadline=2)._config.deadline == 2


async def test_a_call_given_none_has_no_limit_and_an_omitted_one_the_clients(
    server: RecordingServer,
) -> None:
    server.handler = _slow
    async with _limited(server) as agent:
        with pytest.raises(APITimeoutError):
            await agent.get_current_user(deadline=None)  # the timeout still bounds it
        with pytest.raises(APITimeoutError):
            await agent.get_current_user(timeout=None)  # the deadline still bounds it
        assert (await agent.get_current_user(timeout=None, deadline=None)).id == 1
        users = [u async for u in agent.iter_users(timeout=None, deadline=None)]
        assert [u.id for u in users] == [1]


def test_none_removes_a_limit_on_the_blocking_client_too(server: RecordingServer) -> None:
    server.handler = _slow
    with _sync(server, timeout=0.5, deadline=0.5, max_retries=0) as agent:
        with pytest.raises(APITimeoutError):
            agent.get_current_user()
        assert agent.with_options(timeout=None, deadline=None).get_current_user().id == 1
        assert agent.get_current_user(timeout=None, deadline=None).id == 1


def test_the_constructor_reads_none_as_no_limit_and_omitted_as_the_default() -> None:
    assert AsyncAgent(TOKEN, ORG)._config.timeout == Timeout()  # 60 s, 10 s to connect
    assert AsyncAgent(TOKEN, ORG, timeout=None)._config.timeout == Timeout(None, None)
    assert AsyncAgent(TOKEN, ORG, timeout=NOT_GIVEN)._config.timeout == Timeout()
    assert AsyncAgent(TOKEN, ORG, deadline=None)._config.deadline is None
    assert repr(NOT_GIVEN) == "NOT_GIVEN" and not NOT_GIVEN and isinstance(NOT_GIVEN, NotGiven)
