"""``agent.request(method, path, ...)``: an operation the SDK does not know, on both clients.

Same auth, typed errors, retries (idempotent methods only on server errors) and rate
limiting as the SDK's own methods: keyed by route (a known operation's, ``route=``, else the
path as given), with the standard quota unless ``quota=`` says otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from codegen_async import (
    AsyncAgent,
    InternalServerError,
    NotFoundError,
    Quota,
    RateLimits,
)
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0, rate_limit="off") as emulator:
        yield emulator


@asynccontextmanager
async def requester(kind: str, emu: EmulatorThread, **kwargs: Any) -> AsyncIterator[Any]:
    """Yields ``(request, stats)``: ``await request(method, path, ...)`` on one client."""
    if kind == "async":
        async with AsyncAgent(**emu.client_kwargs(**kwargs)) as agent:

            async def send_async(*args: Any, **kw: Any) -> Any:
                return await agent.request(*args, **kw)

            yield send_async, agent.stats
    else:
        with Agent(**emu.client_kwargs(**kwargs)) as blocking:

            async def send_sync(*args: Any, **kw: Any) -> Any:
                return blocking.request(*args, **kw)

            yield send_sync, blocking.stats


KINDS = pytest.mark.parametrize("kind", ["async", "sync"])


@KINDS
async def test_request_returns_the_decoded_json(kind: str, emu: EmulatorThread) -> None:
    async with requester(kind, emu) as (request, _):
        me = await request("GET", "/v1/users/me")
        assert isinstance(me, dict) and me["id"] == emu.user_id
        page = await request(
            "get", f"/v1/organizations/{emu.org_id}/users", params={"limit": 2, "skip": 1}
        )
        assert len(page["items"]) == 2 and page["total"] >= 25
        run = await request(
            "POST", f"/v1/organizations/{emu.org_id}/agent/run", json={"prompt": "Hi"}
        )
        assert run["status"] in ("ACTIVE", "QUEUED", "PENDING", "EVALUATION")
        with pytest.raises(NotFoundError) as info:
            await request("GET", f"/v1/organizations/{emu.org_id}/agent/run/987654321")
        assert info.value.request_id is not None


@KINDS
async def test_only_idempotent_methods_are_retried_on_server_errors(
    kind: str, emu: EmulatorThread, no_backoff: None
) -> None:
    async with requester(kind, emu) as (request, stats):
        emu.inject_fault("get_current_user", "status", status=503)
        assert (await request("GET", "/v1/users/me"))["id"] == emu.user_id
        assert stats.retries == 1
        emu.inject_fault("run", "status", status=503)
        with pytest.raises(InternalServerError):
            await request("POST", f"/v1/organizations/{emu.org_id}/agent/run", json={"prompt": "x"})
        assert stats.retries == 1  # a POST that reached the server is not sent twice
    emu.clear_faults()


@KINDS
async def test_request_keeps_the_standard_quota_keyed_by_path(
    kind: str, emu: EmulatorThread
) -> None:
    limits = RateLimits.documented().replace(default=Quota(2, 0.3))
    async with requester(kind, emu, rate_limits=limits) as (request, stats):
        for _ in range(3):
            with pytest.raises(NotFoundError):
                await request("GET", f"/v1/organizations/{emu.org_id}/new-thing")
        assert stats.rate_limit_waits == 1  # the third waited for the quota
        with pytest.raises(NotFoundError):
            await request("GET", f"/v1/organizations/{emu.org_id}/other-thing")
        assert stats.rate_limit_waits == 1  # another path: its own quota
    async with requester(kind, emu, rate_limits=RateLimits.disabled()) as (request, stats):
        for _ in range(3):
            await request("GET", f"/v1/organizations/{emu.org_id}/repos")
        assert stats.rate_limit_waits == 0


async def test_request_does_not_borrow_get_current_users_quota(emu: EmulatorThread) -> None:
    """It used to take whatever quota get_current_user had been given (1 a minute here)."""
    limits = RateLimits.documented(scale=0.01).replace(get_current_user=Quota(1, 60))
    async with AsyncAgent(**emu.client_kwargs(rate_limits=limits)) as agent:
        for _ in range(3):  # the standard 60 per 30 s (scaled): no wait, so no RateLimitError
            with pytest.raises(NotFoundError):
                await agent.request("GET", "/v1/new-thing", deadline=5)
        assert agent.stats.rate_limit_waits == 0
        assert agent.rate_limits.default == Quota(60, 0.3)
    assert RateLimits.documented().default == Quota(60, 30.0)
    assert RateLimits({}).default is None  # built by hand: what it names, nothing else


@KINDS
async def test_request_on_a_known_route_shares_that_operations_quota(
    kind: str, emu: EmulatorThread
) -> None:
    """The server counts per route template, so the SDK's method and request() count together."""
    limits = RateLimits.documented().replace(get_user=Quota(2, 0.3))
    async with requester(kind, emu, rate_limits=limits) as (request, stats):
        users = f"/v1/organizations/{emu.org_id}/users"
        for user_id in (emu.user_id, emu.user_id + 1, emu.user_id + 2):  # one route, 3 paths
            with contextlib.suppress(NotFoundError):  # the emulator's ids need not be these
                await request("GET", f"{users}/{user_id}")
        assert stats.rate_limit_waits == 1


@KINDS
async def test_request_names_its_route_and_quota(kind: str, emu: EmulatorThread) -> None:
    route = "/v1/organizations/{org_id}/things/{thing_id}"
    async with requester(kind, emu) as (request, stats):
        for thing in (1, 2, 3):
            with pytest.raises(NotFoundError):
                await request(
                    "GET", f"/v1/organizations/{emu.org_id}/things/{thing}",
                    route=route, quota=Quota(2, 0.3),
                )  # fmt: skip
        assert stats.rate_limit_waits == 1  # three paths, one route
        for thing in (1, 2, 3):
            with pytest.raises(NotFoundError):
                await request("GET", f"/v1/things/{thing}", route="/v1/things/{id}", quota=None)
        assert stats.rate_limit_waits == 1  # quota=None: no client-side limit
        with pytest.raises(ValueError, match="route"):
            await request("GET", "/v1/organizations/1/stuff/2", route=route)
        with pytest.raises(ValueError, match="route"):
            await request("GET", "/v1/things/1", route="v1/things/{id}")


async def test_a_routes_quota_is_the_one_given_each_time(emu: EmulatorThread) -> None:
    """The client cached a route's first limiter by name, so a later quota= was ignored."""
    async with AsyncAgent(**emu.client_kwargs()) as agent:
        with pytest.raises(NotFoundError):
            await agent.request("GET", "/v1/gadgets")  # the standard quota (scaled)
        for _ in range(3):
            with pytest.raises(NotFoundError):
                await agent.request("GET", "/v1/gadgets", quota=Quota(2, 0.3))
        assert agent.stats.rate_limit_waits >= 1  # two (or three) in 0.3 s: held back
        with pytest.raises(TypeError, match="quota"):
            await agent.request("GET", "/v1/gadgets", quota=(2, 0.3))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("TRACE", "/v1/users/me"),
        ("GET", "v1/users/me"),
        ("GET", "@evil.example/steal"),
        ("GET", "/v1/users/me?x=1"),
        ("GET", "/v1/users/me#x"),
        ("GET", "/v1/users /me"),
        ("GET", "/v1/users/me\r\nX: 1"),
    ],
)
async def test_request_refuses_what_it_cannot_send_safely(
    emu: EmulatorThread, method: str, path: str
) -> None:
    async with AsyncAgent(**emu.client_kwargs()) as agent:
        with pytest.raises(ValueError):
            await agent.request(method, path)
        assert agent.stats.requests == 0
