"""Who shares a quota: one per token and route, whatever the mode or the base URL's
spelling, and nothing kept for tokens nobody uses any more."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from codegen_async import ENDPOINTS, AsyncAgent, AuthenticationError, Quota, RateLimits
from codegen_async._ratelimit import (
    REGISTRY,
    LimiterRegistry,
    QuotaWaitExceeded,
    SlidingWindowLimiter,
    SmoothLimiter,
)
from codegen_async.emulator import EmulatorThread

TOKEN = "sk-test-SECRET-token-0123456789"
ENDPOINT = ENDPOINTS["analyze_sandbox_logs"]


def _limits(quota: Quota, mode: str = "window") -> RateLimits:
    return RateLimits({ENDPOINT.name: quota}, mode=mode, margin=0.0)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0, rate_limit="sliding") as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_quotas(emu: EmulatorThread) -> None:
    """The conftest forgets the client's limiters between tests: the server does too."""
    emu.reset_rate_limits()
    emu.reset_stats()


# --- one quota per token and route, whatever the mode (issue 14 #7) -------------------------


def test_a_smooth_and_a_window_limiter_on_one_token_keep_one_quota() -> None:
    registry = LimiterRegistry()
    quota = Quota(3, 60.0)
    window = registry.get(TOKEN, ENDPOINT, _limits(quota))
    smooth = registry.get(TOKEN, ENDPOINT, _limits(quota, "smooth"))
    assert isinstance(window, SlidingWindowLimiter)
    assert isinstance(smooth, SmoothLimiter)

    async def main() -> None:
        for _ in range(3):
            await window.acquire()
            window.release()
        with pytest.raises(QuotaWaitExceeded):  # the window client used the whole quota
            await smooth.acquire(deadline=0.0)

    asyncio.run(main())
    assert window.stats().grants == 3


async def test_mixed_modes_on_one_token_get_no_429(emu: EmulatorThread) -> None:
    quota = Quota(5, 0.6)  # the emulator's own quota of the route at time scale 0.01
    limits = RateLimits.documented(0.01)
    smooth_limits = RateLimits.documented(0.01, mode="smooth")
    assert limits.for_endpoint(ENDPOINT) == quota
    async with (
        AsyncAgent(**emu.client_kwargs(rate_limits=limits)) as burst,
        AsyncAgent(**emu.client_kwargs(rate_limits=smooth_limits)) as even,
    ):
        await asyncio.gather(
            *(burst.analyze_sandbox_logs(1) for _ in range(8)),
            *(even.analyze_sandbox_logs(1) for _ in range(4)),
        )
        assert burst.stats.rate_limited == even.stats.rate_limited == 0
    assert emu.stats()["rate_limited"] == 0


# --- the base URL's spelling does not matter (issue 14 #9) ----------------------------------


async def test_two_spellings_of_the_base_url_share_one_quota(emu: EmulatorThread) -> None:
    limits = RateLimits.documented(0.01)
    upper = "HTTP://" + emu.base_url.split("://", 1)[1]
    async with (
        AsyncAgent(**emu.client_kwargs(rate_limits=limits)) as lower_case,
        AsyncAgent(**emu.client_kwargs(rate_limits=limits, base_url=upper)) as upper_case,
    ):
        assert upper_case._transport.config.base_url != lower_case._transport.config.base_url
        await asyncio.gather(
            *(lower_case.analyze_sandbox_logs(1) for _ in range(6)),
            *(upper_case.analyze_sandbox_logs(1) for _ in range(6)),
        )
        assert lower_case.stats.rate_limited == upper_case.stats.rate_limited == 0
    assert emu.stats()["rate_limited"] == 0


# --- nothing kept for tokens nobody uses (issue 14 #5) --------------------------------------


def test_limiters_of_tokens_nobody_holds_are_forgotten_once_idle() -> None:
    registry = LimiterRegistry()
    limits = _limits(Quota(2, 0.02))

    async def main() -> None:
        for i in range(3_000):
            limiter = registry.get(f"token-{i}", ENDPOINT, limits)
            assert limiter is not None
            await limiter.acquire()
            limiter.release()
            del limiter
            if i % 500 == 499:
                await asyncio.sleep(0.03)  # the windows empty

    asyncio.run(main())
    assert len(registry) < 1_200  # swept as it grew: not one route per token ever seen
    gc.collect()
    assert registry.sweep() == 0


def test_a_new_client_within_the_window_still_sees_the_history() -> None:
    registry = LimiterRegistry()
    limits = _limits(Quota(2, 60.0))

    async def use_up() -> None:
        limiter = registry.get(TOKEN, ENDPOINT, limits)
        assert limiter is not None
        for _ in range(2):
            await limiter.acquire()
            limiter.release()

    asyncio.run(use_up())  # one client per request: each is dropped after its call
    gc.collect()
    assert registry.sweep() == 1  # nobody holds it, but its window is not empty

    async def next_client() -> None:
        limiter = registry.get(TOKEN, ENDPOINT, limits)
        assert limiter is not None
        with pytest.raises(QuotaWaitExceeded) as caught:
            await limiter.acquire(deadline=0.0)
        # Most of the 60 s window is still ahead (a loaded machine may take seconds to get
        # here); a limiter built afresh, without the history, would have granted at once.
        assert caught.value.retry_after > 30

    asyncio.run(next_client())


async def test_closed_clients_leave_no_limiter_behind(emu: EmulatorThread) -> None:
    limits = RateLimits.documented(0.0001)  # windows of a few milliseconds
    for i in range(300):
        async with AsyncAgent(**emu.client_kwargs(rate_limits=limits, token=f"user-{i}")) as agent:
            with pytest.raises(AuthenticationError):  # the emulator knows no such user
                await agent.get_current_user()
    await asyncio.sleep(0.05)
    gc.collect()
    assert REGISTRY.sweep() == 0
