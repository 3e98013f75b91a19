"""The in-process limiters: quotas, the any-window invariant, FIFO, cancellation, sharing.

Most cases run on a virtual-time event loop whose clock jumps ahead whenever every task is
waiting on a timer, so that windows of seconds take no real time and every grant time is
exact. Cases about threads and several loops use real time with small windows and check the
invariant on the times the limiter itself recorded (never on how long something took).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import attrs
import pytest

from codegen_async import ENDPOINTS, Quota, RateLimits
from codegen_async._endpoints import AGENT_HEAVY, CREATE_RUN, RUN_LOGS, STANDARD, WRITE_30
from codegen_async._ratelimit import (
    REGISTRY,
    LimiterRegistry,
    SlidingWindowLimiter,
    SmoothLimiter,
    credential_fingerprint,
    parse_backend,
)
from codegen_async.errors import ConfigurationError

T = TypeVar("T")

TOKEN = "sk-test-SECRET-token-0123456789"
OTHER_TOKEN = "sk-test-OTHER-token-9876543210"
BASE = "https://api.example.test"


# --- a virtual-time event loop --------------------------------------------------------------


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """Its ``time()`` only moves when every task waits on a timer: then it jumps to the next."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        selector = self._selector  # type: ignore[attr-defined]
        real_select = selector.select

        def select(timeout: float | None = None) -> Any:
            if timeout is None:
                return real_select(None)
            events = real_select(0)
            if not events and timeout > 0:
                self._now += timeout
            return events

        selector.select = select

    def time(self) -> float:
        return self._now


def run_virtual(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(loop)`` on a fresh virtual-time loop and close it."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def window_violations(
    spans: list[tuple[float, float]], quota: Quota, *, epsilon: float = 1e-9
) -> list[float]:
    """Moments x at which more than ``quota.limit`` requests could fall in [x, x + T).

    Each request is a span (granted, answered): the server saw it at some moment in between.
    The busiest window starts at some request's answer time, so checking those is enough.
    """
    bad = []
    for _, answered in spans:
        inside = sum(1 for g, c in spans if c >= answered and g < answered + quota.window - epsilon)
        if inside > quota.limit:
            bad.append(answered)
    return bad


# --- RateLimits ----------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.01])
def test_documented_quotas_follow_the_endpoint_table(scale: float) -> None:
    limits = RateLimits.documented(scale)
    assert set(limits.quotas) == set(ENDPOINTS)
    for name, endpoint in ENDPOINTS.items():
        quota = limits.for_endpoint(endpoint)
        assert quota == Quota(endpoint.quota.limit, endpoint.quota.window * scale), name
    assert limits.mode == "window"
    assert limits.margin == pytest.approx(0.05 * min(scale, 1.0))


def test_documented_quotas_are_the_published_ones() -> None:
    limits = RateLimits.documented()
    expected = {
        "analyze_sandbox_logs": Quota(5, 60.0),
        "generate_setup_commands": Quota(5, 60.0),
        "run": Quota(10, 60.0),
        "edit_pull_request": Quota(30, 60.0),
        "edit_pull_request_simple": Quota(30, 60.0),
        "get_cli_rules": Quota(30, 60.0),
        "get_run_logs": Quota(60, 60.0),
        "get_users": Quota(60, 30.0),
        "get_run": Quota(60, 30.0),
        "get_mcp_providers": Quota(60, 30.0),  # no documented quota: the standard one
    }
    for name, quota in expected.items():
        assert limits.for_endpoint(ENDPOINTS[name]) == quota, name
    named = (AGENT_HEAVY, CREATE_RUN, WRITE_30, RUN_LOGS, STANDARD)
    assert named == (Quota(5, 60.0), Quota(10, 60.0), Quota(30, 60.0), Quota(60, 60.0), STANDARD)
    assert Quota(60, 30.0) == STANDARD


def test_documented_rejects_bad_arguments() -> None:
    for scale in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            RateLimits.documented(scale)
    with pytest.raises(ValueError, match="mode"):
        RateLimits.documented(mode="bursty")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin"):
        RateLimits.documented(margin=-0.1)
    smooth = RateLimits.documented(0.1, mode="smooth", margin=0.002)
    assert (smooth.mode, smooth.margin) == ("smooth", 0.002)


def test_replace_overrides_some_entries_only() -> None:
    base = RateLimits.documented()
    custom = base.replace(run=Quota(2, 1.0), get_users=None)
    assert custom.for_endpoint(ENDPOINTS["run"]) == Quota(2, 1.0)
    assert custom.for_endpoint(ENDPOINTS["get_users"]) is None
    assert custom.for_endpoint(ENDPOINTS["get_run"]) == Quota(60, 30.0)
    assert base.for_endpoint(ENDPOINTS["run"]) == Quota(10, 60.0)  # unchanged
    assert (custom.mode, custom.margin) == (base.mode, base.margin)
    with pytest.raises(ValueError, match="unknown operations: nope"):
        base.replace(nope=Quota(1, 1.0))
    with pytest.raises(ValueError, match="limit >= 1"):
        base.replace(run=Quota(0, 1.0))


def test_disabled_limits_nothing() -> None:
    limits = RateLimits.disabled()
    assert not limits.enabled
    assert all(limits.for_endpoint(e) is None for e in ENDPOINTS.values())
    registry = LimiterRegistry()
    assert registry.get(TOKEN, ENDPOINTS["run"], limits) is None
    unlimited = RateLimits.documented().replace(run=None)
    assert registry.get(TOKEN, ENDPOINTS["run"], unlimited) is None


# --- the sliding-window log on virtual time -------------------------------------------------


def test_first_n_go_at_once_and_the_next_waits_one_window() -> None:
    quota = Quota(5, 60.0)

    async def main(loop: VirtualTimeLoop) -> tuple[list[float], float, float]:
        limiter = SlidingWindowLimiter(quota, margin=0.25, clock=loop.time)
        burst = []
        for _ in range(5):
            burst.append(await limiter.acquire())
            limiter.release()
        started = loop.time()
        waited = await limiter.acquire()
        return burst, waited, loop.time() - started

    burst, waited, elapsed = run_virtual(main)
    assert burst == [0.0] * 5
    assert waited == pytest.approx(60.25)
    assert elapsed == pytest.approx(60.25)


def test_a_slot_comes_back_one_window_after_its_answer() -> None:
    quota = Quota(2, 10.0)

    async def main(loop: VirtualTimeLoop) -> list[float]:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        await limiter.acquire()
        await limiter.acquire()
        await asyncio.sleep(3.0)  # the first request takes 3 s to answer
        limiter.release()
        await asyncio.sleep(1.0)
        limiter.release()
        times = []
        for _ in range(2):
            await limiter.acquire()
            times.append(loop.time())
        return times

    # Back at 3 + 10 and 4 + 10: not at 0 + 10, when the server may not have seen them yet.
    assert run_virtual(main) == [pytest.approx(13.0), pytest.approx(14.0)]


@pytest.mark.parametrize("seed", range(6))
def test_no_window_ever_holds_more_than_n(seed: int) -> None:
    rng = random.Random(seed)
    quota = Quota(rng.randint(1, 6), rng.choice([1.0, 30.0, 60.0]))
    margin = rng.choice([0.0, 0.05])

    async def main(loop: VirtualTimeLoop) -> tuple[list[tuple[float, float]], SlidingWindowLimiter]:
        limiter = SlidingWindowLimiter(quota, margin=margin, clock=loop.time)
        spans: list[tuple[float, float]] = []

        async def call() -> None:
            await asyncio.sleep(rng.random() * quota.window * 2)
            for _ in range(rng.randint(1, 4)):
                await limiter.acquire()
                granted = loop.time()
                await asyncio.sleep(rng.random() * quota.window / 3)  # request in flight
                spans.append((granted, loop.time()))
                limiter.release()

        await asyncio.gather(*(call() for _ in range(4 * quota.limit)))
        return spans, limiter

    spans, limiter = run_virtual(main)
    assert window_violations(spans, quota) == []
    stats = limiter.stats()
    assert stats.grants == len(spans)
    assert stats.waits == limiter.waits > 0
    assert stats.waited_seconds == pytest.approx(limiter.waited_seconds)


def test_a_greedy_gather_uses_the_whole_quota() -> None:
    quota = Quota(5, 10.0)

    async def main(loop: VirtualTimeLoop) -> list[float]:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        grants: list[float] = []

        async def call() -> None:
            await limiter.acquire()
            grants.append(loop.time())
            limiter.release()

        await asyncio.gather(*(call() for _ in range(15)))
        return grants

    grants = run_virtual(main)
    assert grants == [0.0] * 5 + [pytest.approx(10.0)] * 5 + [pytest.approx(20.0)] * 5


def test_waiters_are_served_first_come_first_served() -> None:
    quota = Quota(2, 5.0)

    async def main(loop: VirtualTimeLoop) -> list[int]:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        order: list[int] = []

        async def call(i: int) -> None:
            await asyncio.sleep(i * 0.01)  # arrive in the order of i
            await limiter.acquire()
            order.append(i)
            await asyncio.sleep(random.Random(i).random())
            limiter.release()

        await asyncio.gather(*(call(i) for i in reversed(range(12))))
        return order

    assert run_virtual(main) == list(range(12))


def test_a_newcomer_never_jumps_the_line() -> None:
    quota = Quota(1, 5.0)

    async def main(loop: VirtualTimeLoop) -> list[str]:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        order: list[str] = []
        await limiter.acquire()
        limiter.release()

        async def call(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            await limiter.acquire()
            order.append(name)
            limiter.release()

        # "late" arrives exactly when the slot comes back, while "early" is still parked.
        await asyncio.gather(call("early", 1.0), call("late", 5.0))
        return order

    assert run_virtual(main) == ["early", "late"]


def test_a_cancelled_waiter_takes_nothing_and_the_next_gets_its_turn_at_once() -> None:
    quota = Quota(2, 10.0)

    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        granted: dict[str, float] = {}

        async def call(name: str) -> None:
            await limiter.acquire()
            granted[name] = loop.time()
            limiter.release()

        await limiter.acquire()
        await limiter.acquire()
        limiter.release()
        limiter.release()  # both slots come back at t=10
        first = asyncio.create_task(call("first"))  # head of the line
        second = asyncio.create_task(call("second"))
        third = asyncio.create_task(call("third"))
        await asyncio.sleep(4.0)
        first.cancel()  # the head leaves: the next must not wait longer because of it
        await asyncio.sleep(1.0)
        second.cancel()
        await third
        with pytest.raises(asyncio.CancelledError):
            await first
        with pytest.raises(asyncio.CancelledError):
            await second
        assert granted == {"third": pytest.approx(10.0)}
        assert len(limiter.window.line) == 0
        # Nothing was taken by the cancelled ones: one more caller gets the other slot now.
        started = loop.time()
        assert await limiter.acquire() == 0.0
        assert loop.time() == started
        assert limiter.stats().grants == 4
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run_virtual(main)


def test_cancelling_every_waiter_leaves_the_limiter_clean() -> None:
    quota = Quota(1, 10.0)

    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        await limiter.acquire()
        limiter.release()
        waiters = [asyncio.create_task(limiter.acquire()) for _ in range(5)]
        await asyncio.sleep(1.0)
        for task in waiters:
            task.cancel()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert len(limiter.window.line) == 0
        await asyncio.sleep(9.0)
        assert await limiter.acquire() == 0.0  # the slot came back at t=10, untouched
        assert limiter.stats().grants == 2

    run_virtual(main)


def test_a_timeout_around_acquire_cancels_cleanly() -> None:
    quota = Quota(1, 10.0)

    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        await limiter.acquire()
        limiter.release()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(limiter.acquire(), timeout=2.0)
        waited = await limiter.acquire()
        assert waited == pytest.approx(8.0)
        assert loop.time() == pytest.approx(10.0)

    run_virtual(main)


def test_penalize_closes_the_route_for_everyone() -> None:
    quota = Quota(5, 10.0)

    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(quota, margin=0.0, clock=loop.time)
        await limiter.acquire()
        limiter.release()
        limiter.penalize(30.0)
        limiter.penalize(3.0)  # a shorter pause never reopens the route early
        results = await asyncio.gather(*(limiter.acquire() for _ in range(3)))
        assert results == [pytest.approx(30.0)] * 3
        assert loop.time() == pytest.approx(30.0)
        assert limiter.stats().penalties == 2

    run_virtual(main)


def test_margin_is_added_to_every_window() -> None:
    async def main(loop: VirtualTimeLoop) -> float:
        limiter = SlidingWindowLimiter(Quota(1, 2.0), margin=0.5, clock=loop.time)
        await limiter.acquire()
        limiter.release()
        return await limiter.acquire()

    assert run_virtual(main) == pytest.approx(2.5)


def test_a_slot_never_released_is_reclaimed_after_max_hold(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main(loop: VirtualTimeLoop) -> float:
        limiter = SlidingWindowLimiter(Quota(1, 2.0), margin=0.0, max_hold=30.0, clock=loop.time)
        await limiter.acquire()  # and never release()
        return await limiter.acquire()

    with caplog.at_level(logging.WARNING, logger="codegen_async.ratelimit"):
        assert run_virtual(main) == pytest.approx(32.0)
    assert "without being released" in caplog.text


def test_waiting_is_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    registry = LimiterRegistry()
    limits = RateLimits.documented(0.001)
    endpoint = ENDPOINTS["analyze_sandbox_logs"]

    async def main() -> None:
        limiter = registry.get(TOKEN, endpoint, limits)
        assert limiter is not None
        for _ in range(6):
            await limiter.acquire()
            limiter.release()

    with caplog.at_level(logging.DEBUG, logger="codegen_async.ratelimit"):
        asyncio.run(main())
    waiting = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert waiting
    assert "analyze_sandbox_logs" in waiting[0]
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert "analyze_sandbox_logs" in repr(registry.get(TOKEN, endpoint, limits))


def test_bad_quotas_and_margins_are_refused() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(Quota(0, 1.0))
    with pytest.raises(ValueError):
        SlidingWindowLimiter(Quota(1, 0.0))
    with pytest.raises(ValueError):
        SlidingWindowLimiter(Quota(1, 1.0), margin=-1.0)


# --- threads and several event loops --------------------------------------------------------


def _run_in_threads(workers: list[Callable[[], Awaitable[None]]]) -> None:
    """Run each coroutine function on its own event loop in its own thread."""
    errors: list[BaseException] = []

    def target(work: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            await work()

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_two_loops_in_two_threads_share_one_limiter() -> None:
    quota = Quota(3, 0.15)
    lock = threading.Lock()
    spans: list[tuple[float, float]] = []
    who: list[str] = []
    limiter = SlidingWindowLimiter(quota, margin=0.002)

    def worker(name: str) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            async def call() -> None:
                await limiter.acquire()
                granted = time.monotonic()
                await asyncio.sleep(0.001)
                answered = time.monotonic()  # read before release(): never after its stamp
                limiter.release()
                with lock:
                    spans.append((granted, answered))
                    who.append(name)

            await asyncio.gather(*(call() for _ in range(6)))

        return work

    _run_in_threads([worker("a"), worker("b"), worker("c")])
    assert len(spans) == 18
    assert set(who) == {"a", "b", "c"}
    assert window_violations(spans, quota) == []
    stats = limiter.stats()
    assert stats.grants == 18
    assert stats.waits >= 18 - 3
    assert len(limiter.window.line) == 0


def test_cancellation_from_another_loop_wakes_the_next_waiter() -> None:
    quota = Quota(1, 0.2)
    limiter = SlidingWindowLimiter(quota, margin=0.0)
    parked = threading.Event()
    done: list[str] = []

    async def holder() -> None:
        await limiter.acquire()
        limiter.release()
        task = asyncio.create_task(limiter.acquire())  # first in line, on this loop
        await asyncio.sleep(0.02)
        parked.set()
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        done.append("cancelled")

    async def other() -> None:
        parked.wait(5)  # blocks this thread's loop on purpose: it has nothing else to do
        await limiter.acquire()  # second in line, on another loop
        limiter.release()
        done.append("granted")

    _run_in_threads([holder, other])
    assert sorted(done) == ["cancelled", "granted"]
    assert limiter.stats().grants == 2
    assert len(limiter.window.line) == 0


def test_a_waiter_of_a_closed_loop_does_not_block_the_line() -> None:
    quota = Quota(1, 0.1)
    limiter = SlidingWindowLimiter(quota, margin=0.0)

    async def first() -> None:
        await limiter.acquire()
        limiter.release()

    asyncio.run(first())
    # A waiter parks on a loop that is then closed without ever running it again.
    dead = asyncio.new_event_loop()
    task = dead.create_task(limiter.acquire())
    dead.run_until_complete(asyncio.sleep(0.01))
    assert not task.done()
    dead.close()

    async def second() -> float:
        return await limiter.acquire()

    asyncio.run(second())
    assert len(limiter.window.line) == 0


# --- smooth mode --------------------------------------------------------------------------


def test_smooth_mode_spaces_requests_evenly() -> None:
    quota = Quota(4, 0.2)
    ticks: list[float] = []
    limiter = SmoothLimiter(quota, margin=0.0, on_grant=ticks.append)

    async def main() -> list[float]:
        async def call() -> float:
            waited = await limiter.acquire()
            limiter.release()
            return waited

        return await asyncio.gather(*(call() for _ in range(6)))

    waits = asyncio.run(main())
    assert waits[0] == 0.0
    assert all(w > 0 for w in waits[1:])
    assert len(ticks) == 6
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= limiter.interval - 1e-6
    assert limiter.interval == pytest.approx(0.05)
    assert limiter.stats().grants == 6
    assert limiter.waits == 5


def test_smooth_mode_is_shared_by_loops_in_several_threads() -> None:
    quota = Quota(5, 0.1)
    ticks: list[float] = []
    limiter = SmoothLimiter(quota, margin=0.0, on_grant=ticks.append)

    async def work() -> None:
        for _ in range(4):
            await limiter.acquire()
            limiter.release()

    _run_in_threads([work, work, work])
    assert len(ticks) == 12
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert min(gaps) >= limiter.interval - 1e-6


def test_smooth_mode_cancelled_waiter_takes_no_tick() -> None:
    quota = Quota(2, 0.4)  # one tick every 0.2 s
    ticks: list[float] = []
    limiter = SmoothLimiter(quota, margin=0.0, on_grant=ticks.append)

    async def main() -> None:
        await limiter.acquire()
        limiter.release()
        waiting = asyncio.create_task(limiter.acquire())
        behind = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await behind
        limiter.release()

    asyncio.run(main())
    assert len(ticks) == 2  # the first caller and the one behind; none for the cancelled one
    assert ticks[1] - ticks[0] >= limiter.interval - 1e-6


def test_smooth_mode_penalty_pauses_then_resumes_the_pace() -> None:
    quota = Quota(4, 0.2)
    ticks: list[float] = []
    limiter = SmoothLimiter(quota, margin=0.0, on_grant=ticks.append)

    async def main() -> float:
        await limiter.acquire()
        limiter.release()
        penalized_at = time.monotonic()
        limiter.penalize(0.3)
        for _ in range(3):
            await limiter.acquire()
            limiter.release()
        return penalized_at

    penalized_at = asyncio.run(main())
    assert ticks[1] >= penalized_at + 0.3
    gaps = [b - a for a, b in itertools.pairwise(ticks[1:])]
    assert min(gaps) >= limiter.interval - 1e-6  # no burst after the pause
    assert limiter.stats().penalties == 1


def test_smooth_mode_needs_no_thread_and_serves_several_loops_in_turn() -> None:
    limiter = SmoothLimiter(Quota(10, 0.1), margin=0.0)
    before = threading.active_count()

    async def once() -> None:
        await limiter.acquire()
        limiter.release()

    asyncio.run(once())
    asyncio.run(once())  # a second loop: nothing was bound to the first one
    assert threading.active_count() == before
    assert limiter.stats().grants == 2


# --- the registry -------------------------------------------------------------------------


def test_registry_shares_per_token_and_route_and_keeps_tokens_apart() -> None:
    registry = LimiterRegistry()
    limits = RateLimits.documented()
    run = ENDPOINTS["run"]
    a = registry.get(TOKEN, run, limits)
    assert isinstance(a, SlidingWindowLimiter)
    assert registry.get(TOKEN, run, limits) is a
    assert registry.get(OTHER_TOKEN, run, limits) is not a
    assert registry.get(TOKEN, ENDPOINTS["get_run"], limits) is not a
    smooth = registry.get(TOKEN, run, RateLimits.documented(mode="smooth"))
    assert isinstance(smooth, SmoothLimiter)
    assert smooth.window is a.window  # one quota per token and route, whatever the mode
    assert registry.get(TOKEN, run, limits, backend="memory") is a
    registry.clear()
    assert registry.get(TOKEN, run, limits) is not a


def test_backend_names() -> None:
    assert parse_backend(None) is None
    assert parse_backend("memory") is None
    assert parse_backend(" memory:// ") is None
    assert parse_backend("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert parse_backend("rediss://h:1/0") == "rediss://h:1/0"
    with pytest.raises(ConfigurationError, match="unsupported rate_limit_backend 'memcached'"):
        parse_backend("memcached://h:1")


def test_fingerprint_is_one_way_and_distinct() -> None:
    fp = credential_fingerprint(TOKEN)
    assert len(fp) == 32
    assert TOKEN not in fp
    assert fp != credential_fingerprint(OTHER_TOKEN)


def test_rate_limits_is_immutable() -> None:
    limits = RateLimits.documented()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        limits.margin = 1.0  # type: ignore[misc]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_limiters_work_in_a_forked_child() -> None:
    import multiprocessing

    limiter = SmoothLimiter(Quota(10, 0.1), margin=0.0)

    async def once() -> None:
        await limiter.acquire()
        limiter.release()

    asyncio.run(once())
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()

    def child() -> None:
        asyncio.run(once())  # no lock or waiter inherited from the parent blocks it
        registry_limiter = REGISTRY.get(TOKEN, ENDPOINTS["run"], RateLimits.documented())
        results.put((limiter.stats().grants, registry_limiter is not None))

    proc = ctx.Process(target=child)
    proc.start()
    proc.join(timeout=30)
    assert proc.exitcode == 0
    assert results.get(timeout=5) == (2, True)
