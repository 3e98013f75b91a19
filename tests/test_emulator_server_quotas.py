"""Server-side quotas: fixed and sliding windows, per route and token, 429 + Retry-After."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from codegen_async import RateLimitError, RateLimits
from codegen_async._endpoints import ENDPOINTS, Quota
from codegen_async.emulator import Emulator
from codegen_async.emulator._quota import ServerRateLimiter, format_retry_after

RUN = ENDPOINTS["run"]
USERS = ENDPOINTS["get_users"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the limiter alone, on a fake clock ----------------------------------------------------
def test_fixed_window_opens_at_the_first_request() -> None:
    clock = FakeClock()
    limiter = ServerRateLimiter("fixed", 1.0, clock=clock)
    quota = Quota(3, 10.0)
    assert [limiter.hit("t", "r", quota) for _ in range(3)] == [None, None, None]
    assert limiter.hit("t", "r", quota) == pytest.approx(10.0)
    clock.now += 9.0
    assert limiter.hit("t", "r", quota) == pytest.approx(1.0)
    clock.now += 1.0  # the window closes: a full quota at once (the fixed-window burst)
    assert [limiter.hit("t", "r", quota) for _ in range(3)] == [None, None, None]
    assert limiter.hit("t", "r", quota) == pytest.approx(10.0)


def test_sliding_window_admits_as_old_requests_age_out() -> None:
    clock = FakeClock()
    limiter = ServerRateLimiter("sliding", 1.0, clock=clock)
    quota = Quota(3, 10.0)
    assert limiter.hit("t", "r", quota) is None  # t=0
    clock.now += 6.0
    assert limiter.hit("t", "r", quota) is None  # t=6
    assert limiter.hit("t", "r", quota) is None  # t=6
    assert limiter.hit("t", "r", quota) == pytest.approx(4.0)  # until t=10
    clock.now += 4.0  # t=10: only the first request has aged out
    assert limiter.hit("t", "r", quota) is None
    assert limiter.hit("t", "r", quota) == pytest.approx(6.0)  # until t=16


def test_counters_are_per_token_and_route_and_scaled() -> None:
    clock = FakeClock()
    limiter = ServerRateLimiter("fixed", 0.01, clock=clock)
    quota = Quota(1, 60.0)
    assert limiter.hit("a", "r1", quota) is None
    assert limiter.hit("a", "r1", quota) == pytest.approx(0.6)
    assert limiter.hit("b", "r1", quota) is None
    assert limiter.hit("a", "r2", quota) is None
    limiter.reset()
    assert limiter.hit("a", "r1", quota) is None


def test_off_never_refuses() -> None:
    limiter = ServerRateLimiter("off", 1.0)
    assert not limiter.enabled
    assert all(limiter.hit("t", "r", Quota(1, 60.0)) is None for _ in range(100))
    with pytest.raises(ValueError):
        ServerRateLimiter("leaky", 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "scale", "header"),
    [
        (12.2, 1.0, "13"),
        (0.2, 1.0, "1"),
        (59.9999, 2.0, "60"),
        (0.41234, 0.01, "0.412"),
        (0.0, 0.01, "0.001"),
        (1.5, 0.5, "1.500"),
    ],
)
def test_retry_after_format(seconds: float, scale: float, header: str) -> None:
    assert format_retry_after(seconds, scale) == header


# --- over HTTP -------------------------------------------------------------------------------
@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def create(
    session: aiohttp.ClientSession, emu: Emulator, token: str | None = None
) -> tuple[int, aiohttp.typedefs.LooseHeaders, dict[str, object]]:
    async with session.post(
        f"{emu.base_url}/v1/organizations/{emu.org_id}/agent/run",
        json={"prompt": "x"},
        headers={"Authorization": f"Bearer {token or emu.token}"},
    ) as resp:
        return resp.status, resp.headers, await resp.json()


async def test_fixed_window_over_http(session: aiohttp.ClientSession) -> None:
    scale = 0.02  # the run quota, 10 a minute, becomes 10 in 1.2 s
    async with Emulator(time_scale=scale, run_duration=(1e4, 1e4)) as emu:
        statuses = [(await create(session, emu))[0] for _ in range(RUN.quota.limit)]
        assert statuses == [200] * RUN.quota.limit
        status, headers, body = await create(session, emu)
        assert status == 429
        assert body == {
            "message": "Rate limit exceeded. Please try again later.",
            "status_code": 429,
        }
        retry_after = float(headers["Retry-After"])  # type: ignore[index]
        assert 0 < retry_after <= RUN.quota.window * scale
        assert headers["Retry-After"].count(".") == 1  # type: ignore[index,union-attr]
        # Another token, and another route, have quotas of their own.
        assert (await create(session, emu, emu.add_token()))[0] == 200
        async with session.get(
            f"{emu.base_url}/v1/users/me", headers={"Authorization": f"Bearer {emu.token}"}
        ) as resp:
            assert resp.status == 200
        await asyncio.sleep(retry_after + 0.01)
        assert (await create(session, emu))[0] == 200
        stats = emu.stats()
        assert stats["rate_limited"] == 1
        assert stats["rate_limited_by_route"] == {RUN.route: 1}
        assert stats["responses"]["429"] == 1
        assert stats["runs_created"] == RUN.quota.limit + 2


async def test_sliding_window_over_http(session: aiohttp.ClientSession) -> None:
    scale = 0.02  # 10 in any 1.2 s
    window = RUN.quota.window * scale
    async with Emulator(time_scale=scale, rate_limit="sliding", run_duration=(1e4, 1e4)) as emu:
        assert (await create(session, emu))[0] == 200
        await asyncio.sleep(window * 0.5)
        statuses = [(await create(session, emu))[0] for _ in range(RUN.quota.limit - 1)]
        assert statuses == [200] * (RUN.quota.limit - 1)
        status, headers, _ = await create(session, emu)
        assert status == 429
        await asyncio.sleep(float(headers["Retry-After"]) + 0.01)  # type: ignore[index]
        # Only the first request has aged out: one more is admitted, not a whole window.
        assert (await create(session, emu))[0] == 200
        status, headers, _ = await create(session, emu)
        assert status == 429
        assert 0 < float(headers["Retry-After"]) < window  # type: ignore[index]


async def test_retry_after_is_whole_seconds_at_real_speed(session: aiohttp.ClientSession) -> None:
    async with Emulator() as emu:
        headers = {"Authorization": f"Bearer {emu.token}"}
        url = f"{emu.base_url}{USERS.path.format(org_id=emu.org_id)}"
        for _ in range(USERS.quota.limit):
            async with session.get(url, headers=headers) as resp:
                assert resp.status == 200
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == str(int(USERS.quota.window))


async def test_off_serves_everything(session: aiohttp.ClientSession) -> None:
    async with Emulator(rate_limit="off") as emu:
        headers = {"Authorization": f"Bearer {emu.token}"}
        url = f"{emu.base_url}{USERS.path.format(org_id=emu.org_id)}"
        for _ in range(USERS.quota.limit + 20):
            async with session.get(url, headers=headers) as resp:
                assert resp.status == 200
        assert emu.stats()["rate_limited"] == 0


async def test_sdk_with_scaled_quotas_never_hits_a_429() -> None:
    async with Emulator(time_scale=0.01) as emu, emu.client() as agent:
        runs = await asyncio.gather(*(agent.run(f"burst {i}") for i in range(15)))
        assert len({r.id for r in runs}) == 15
        stats = emu.stats()
        assert stats["rate_limited"] == 0 and stats["runs_created"] == 15


@pytest.mark.parametrize("mode", ["fixed", "sliding"])
async def test_sdk_without_quotas_recovers_from_429s(mode: str) -> None:
    async with (
        Emulator(time_scale=0.01, rate_limit=mode) as emu,  # type: ignore[arg-type]
        emu.client(rate_limits=RateLimits.disabled(), max_retries=3) as agent,
    ):
        runs = await asyncio.gather(*(agent.run(f"burst {i}") for i in range(12)))
        assert len({r.id for r in runs}) == 12
        stats = emu.stats()
        assert stats["rate_limited"] >= 2 and stats["runs_created"] == 12
        assert agent.stats.rate_limited == stats["rate_limited"]
        # With no retries left, the 429 surfaces with the server's hint.
        async with emu.client(rate_limits=RateLimits.disabled(), max_retries=0) as strict:
            with pytest.raises(RateLimitError) as info:
                await asyncio.gather(*(strict.run("again") for _ in range(12)))
            assert info.value.retry_after is not None and info.value.retry_after <= 0.6
