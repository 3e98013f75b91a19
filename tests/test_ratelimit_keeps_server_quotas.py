"""Client-side limits against the time-scaled emulator: no 429 from the server, ever.

``time_scale=0.01`` turns the 5-per-minute quota of log analysis and setup commands into
5 per 0.6 s; the clients use ``RateLimits.documented(scale=0.01)`` to match. Clients run
with ``max_retries=0`` where a 429 must surface instead of being retried away.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from codegen_async import AsyncAgent, RateLimits
from codegen_async._endpoints import ENDPOINTS
from codegen_async._ratelimit import REGISTRY, SlidingWindowLimiter
from codegen_async.emulator import Emulator, EmulatorThread

SCALE = 0.01
N = 5  # the quota of analyze_sandbox_logs and generate_setup_commands


def _limits(mode: str = "window") -> RateLimits:
    return RateLimits.documented(SCALE, mode=mode)  # type: ignore[arg-type]


async def _repo_id(agent: AsyncAgent) -> int:
    page = await agent.get_repositories()
    return page.items[0].id


@pytest.mark.parametrize("server", ["fixed", "sliding"])
@pytest.mark.parametrize("operation", ["analyze_sandbox_logs", "generate_setup_commands"])
async def test_a_greedy_gather_gets_no_429(server: str, operation: str) -> None:
    async with (
        Emulator(time_scale=SCALE, rate_limit=server, seed=0) as emu,  # type: ignore[arg-type]
        emu.client(max_retries=0, rate_limits=_limits()) as agent,
    ):
        if operation == "analyze_sandbox_logs":

            def call() -> Awaitable[Any]:
                return agent.analyze_sandbox_logs(1)
        else:
            repo_id = await _repo_id(agent)

            def call() -> Awaitable[Any]:
                return agent.generate_setup_commands(repo_id)

        emu.reset_stats()
        results = await asyncio.gather(*(call() for _ in range(3 * N)), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        stats = emu.stats()
        assert stats["rate_limited"] == 0
        assert stats["responses"].get("429", 0) == 0
        assert sum(stats["requests"].values()) == 3 * N
        # The first N went at once; every later one waited for the window.
        assert agent.stats.rate_limit_waits == 2 * N
        assert agent.stats.rate_limited == 0
        limiter = REGISTRY.get(emu.token, ENDPOINTS[operation], _limits())
        assert isinstance(limiter, SlidingWindowLimiter)
        assert limiter.stats().grants == 3 * N
        assert limiter.waits == 2 * N
        assert agent.stats.rate_limit_wait_seconds == pytest.approx(limiter.waited_seconds)


@pytest.mark.parametrize("server", ["fixed", "sliding"])
async def test_smooth_mode_gets_no_429(server: str) -> None:
    async with (
        Emulator(time_scale=SCALE, rate_limit=server, seed=0) as emu,  # type: ignore[arg-type]
        emu.client(max_retries=0, rate_limits=_limits("smooth")) as agent,
    ):
        results = await asyncio.gather(
            *(agent.analyze_sandbox_logs(1) for _ in range(2 * N)), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert emu.stats()["rate_limited"] == 0
        assert agent.stats.rate_limit_waits == 2 * N - 1  # only the first went at once


async def test_two_clients_on_one_token_share_and_another_token_does_not() -> None:
    async with Emulator(time_scale=SCALE, rate_limit="sliding", seed=0) as emu:
        other_token = emu.add_token()
        async with (
            emu.client(max_retries=0, rate_limits=_limits()) as first,
            emu.client(max_retries=0, rate_limits=_limits()) as second,
            emu.client(token=other_token, max_retries=0, rate_limits=_limits()) as other,
        ):
            calls = [c.analyze_sandbox_logs(1) for c in (first, second) for _ in range(N)]
            calls += [other.analyze_sandbox_logs(1) for _ in range(N)]
            results = await asyncio.gather(*calls, return_exceptions=True)
            assert [r for r in results if isinstance(r, BaseException)] == []
            assert emu.stats()["rate_limited"] == 0
            # Ten calls on one token: five went at once, five waited, whichever client.
            assert first.stats.rate_limit_waits + second.stats.rate_limit_waits == N
            # The other token has a quota of its own.
            assert other.stats.rate_limit_waits == 0


def test_the_sync_agent_shares_limits_with_async_clients() -> None:
    from codegen_sync import Agent

    with EmulatorThread(time_scale=SCALE, rate_limit="sliding", seed=0) as emu:
        kwargs = emu.client_kwargs(max_retries=0, rate_limits=_limits())
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def blocking() -> None:
            with Agent(**kwargs) as agent:
                start.wait()
                for _ in range(N):
                    try:
                        agent.analyze_sandbox_logs(1)
                    except BaseException as exc:  # pragma: no cover - reported below
                        errors.append(exc)
                blocking_waits.append(agent.stats.rate_limit_waits)

        async def concurrent() -> int:
            async with AsyncAgent(**kwargs) as agent:
                await asyncio.get_running_loop().run_in_executor(None, start.wait)
                results = await asyncio.gather(
                    *(agent.analyze_sandbox_logs(1) for _ in range(N)), return_exceptions=True
                )
                errors.extend(r for r in results if isinstance(r, BaseException))
                return agent.stats.rate_limit_waits

        blocking_waits: list[int] = []
        thread = threading.Thread(target=blocking)
        thread.start()
        async_waits = asyncio.run(concurrent())
        thread.join(timeout=60)
        assert errors == []
        assert emu.stats()["rate_limited"] == 0
        # One limiter served both, though the Agent's calls ran on its own loop and thread.
        limiter = REGISTRY.get(emu.token, ENDPOINTS["analyze_sandbox_logs"], _limits())
        assert isinstance(limiter, SlidingWindowLimiter)
        assert limiter.stats().grants == 2 * N
        assert limiter.waits == async_waits + blocking_waits[0]


async def test_a_429_closes_the_route_for_every_client_then_the_call_is_retried() -> None:
    pause = 1.5  # seconds, not scaled: long enough that the second client surely sees it
    async with Emulator(time_scale=SCALE, rate_limit="sliding", seed=0) as emu:
        other_token = emu.add_token()
        async with (
            emu.client(rate_limits=_limits()) as first,
            emu.client(rate_limits=_limits()) as second,
            emu.client(token=other_token, rate_limits=_limits()) as other,
        ):
            # As if another process on the same token had used the quota up.
            emu.inject_fault("get_current_user", "status", status=429, retry_after=pause)
            started = time.monotonic()
            rejected = asyncio.create_task(first.get_current_user())
            # Until the first client has read the 429 (the emulator counts it as it answers,
            # a moment before the client has it and closes the route).
            while first.stats.rate_limited == 0:
                await asyncio.sleep(0.005)
            user = await second.get_current_user()  # same token: waits for the pause
            assert time.monotonic() - started >= pause
            await other.get_current_user()  # another token: not held back
            assert (await rejected).id == user.id
            assert first.stats.rate_limited == 1
            assert first.stats.retries == 1
            assert second.stats.rate_limit_waits == 1
            assert second.stats.rate_limited == 0
            assert other.stats.rate_limit_waits == 0
            limiter = REGISTRY.get(emu.token, ENDPOINTS["get_current_user"], _limits())
            assert isinstance(limiter, SlidingWindowLimiter)
            assert limiter.stats().penalties == 1
        assert emu.stats()["rate_limited"] == 0  # the fault's 429 is not a quota refusal


async def test_a_429_without_retry_after_pauses_one_window() -> None:
    async with (
        Emulator(time_scale=SCALE, rate_limit="off", seed=0) as emu,
        emu.client(rate_limits=_limits()) as agent,
    ):
        emu.inject_fault("get_current_user", "status", status=429)
        started = time.monotonic()
        await agent.get_current_user()
        window = ENDPOINTS["get_current_user"].quota.window * SCALE
        assert time.monotonic() - started >= window
        assert agent.stats.rate_limited == 1
        assert agent.stats.rate_limit_waits == 1


async def test_a_cancelled_call_leaves_its_slot_to_the_next() -> None:
    async with (
        Emulator(time_scale=SCALE, rate_limit="sliding", seed=0) as emu,
        emu.client(max_retries=0, rate_limits=_limits()) as agent,
    ):
        await asyncio.gather(*(agent.analyze_sandbox_logs(1) for _ in range(N)))
        waiting = [asyncio.create_task(agent.analyze_sandbox_logs(1)) for _ in range(N)]
        await asyncio.sleep(0.05)
        for task in waiting[:3]:
            task.cancel()
        done = await asyncio.gather(*waiting, return_exceptions=True)
        assert sum(isinstance(r, asyncio.CancelledError) for r in done) == 3
        assert emu.stats()["requests"].get(ENDPOINTS["analyze_sandbox_logs"].route) == N + 2
        # Three slots of that window are still free: three more go without waiting. (A
        # quarter window first: on a loaded machine the first batch's answers, which start
        # those slots' windows, spread out; slots a cancelled call took would stay taken.)
        await asyncio.sleep(0.15)
        before = agent.stats.rate_limit_waits
        await asyncio.gather(*(agent.analyze_sandbox_logs(1) for _ in range(3)))
        assert agent.stats.rate_limit_waits == before
        assert emu.stats()["rate_limited"] == 0
