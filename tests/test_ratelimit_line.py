"""The first-come line every limiter waits in: deadlines, blocked loops, cheap cancellation.

Deadline cases run on the virtual-time loop of ``test_ratelimit`` (exact instants, no real
waiting); the cases about threads and loops use real time with generous bounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Iterator

import pytest

from codegen_async import AsyncAgent, Quota, RateLimits
from codegen_async._ratelimit import (
    QuotaWaitExceeded,
    SlidingWindowLimiter,
    SmoothLimiter,
)
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent

from .test_ratelimit import VirtualTimeLoop, run_virtual

# --- deadlines ------------------------------------------------------------------------------


def test_a_known_wait_past_the_deadline_raises_at_once_and_takes_nothing() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(Quota(1, 10.0), margin=0.0, clock=loop.time)
        await limiter.acquire()
        limiter.release()  # the slot comes back at t=10
        with pytest.raises(QuotaWaitExceeded) as caught:
            await limiter.acquire(deadline=loop.time() + 4.0)
        assert loop.time() == 0.0  # not slept: the wait could not fit
        assert caught.value.retry_after == pytest.approx(10.0)
        assert "no slot before the deadline" in str(caught.value)
        assert len(limiter.window.line) == 0
        assert await limiter.acquire(deadline=loop.time() + 10.5) == pytest.approx(10.0)
        assert limiter.stats().grants == 2

    run_virtual(main)


def test_a_wait_that_fits_is_served() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(Quota(2, 5.0), margin=0.0, clock=loop.time)
        for _ in range(2):
            await limiter.acquire(deadline=loop.time())  # a free slot needs no time
            limiter.release()
        assert await limiter.acquire(deadline=loop.time() + 5.0) == pytest.approx(5.0)

    run_virtual(main)


def test_an_unknown_wait_raises_when_the_deadline_passes_and_wakes_the_next() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(Quota(1, 2.0), margin=0.0, max_hold=100.0, clock=loop.time)
        await limiter.acquire()  # held: answered at any time, then back 2 s later
        bounded = asyncio.create_task(limiter.acquire(deadline=3.0))
        behind = asyncio.create_task(limiter.acquire())
        with pytest.raises(QuotaWaitExceeded) as caught:
            await bounded
        assert loop.time() == pytest.approx(3.0)
        assert caught.value.retry_after == pytest.approx(2.0)  # a release now: back at +2
        limiter.release()  # answered at t=3: back at t=5, for the one behind
        assert await behind == pytest.approx(5.0)
        assert limiter.stats().grants == 2

    run_virtual(main)


def test_a_waiter_deep_in_line_knows_it_cannot_fit() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(Quota(2, 10.0), margin=0.0, clock=loop.time)
        for _ in range(2):
            await limiter.acquire()
            limiter.release()  # both back at t=10
        ahead = [asyncio.create_task(limiter.acquire()) for _ in range(2)]
        await asyncio.sleep(0)
        # Two callers ahead take both slots at t=10; the next one comes back at t=20.
        with pytest.raises(QuotaWaitExceeded) as caught:
            await limiter.acquire(deadline=15.0)
        assert loop.time() == 0.0
        assert caught.value.retry_after == pytest.approx(20.0)
        await asyncio.gather(*ahead)

    run_virtual(main)


def test_a_429_pause_past_the_deadline_raises_at_once() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = SlidingWindowLimiter(Quota(5, 10.0), margin=0.0, clock=loop.time)
        limiter.penalize(20.0)
        with pytest.raises(QuotaWaitExceeded) as caught:
            await limiter.acquire(deadline=5.0)
        assert loop.time() == 0.0
        assert caught.value.retry_after == pytest.approx(20.0)

    run_virtual(main)


def test_the_smooth_pace_counts_against_the_deadline() -> None:
    limiter = SmoothLimiter(Quota(2, 20.0), margin=0.0)  # one every 10 s

    async def main() -> None:
        await limiter.acquire()
        limiter.release()
        with pytest.raises(QuotaWaitExceeded) as caught:
            await limiter.acquire(deadline=time.monotonic() + 1.0)
        assert 5.0 < caught.value.retry_after <= 10.0

    asyncio.run(main())
    assert limiter.stats().grants == 1


# --- a blocked loop cannot hold up the others (issue 14 #2) ---------------------------------


def test_a_waiter_of_a_blocked_loop_does_not_hold_up_another_loop() -> None:
    limiter = SlidingWindowLimiter(Quota(1, 0.3), margin=0.0)
    served: list[float] = []

    async def other_loop() -> None:
        served.append(await limiter.acquire())
        limiter.release()

    async def blocked_loop() -> None:
        await limiter.acquire()
        limiter.release()  # the quota is used up for 0.3 s
        head = asyncio.create_task(limiter.acquire())  # first in line, on this loop
        await asyncio.sleep(0.05)
        # This loop's thread now blocks on work done by another loop (as a blocking
        # codegen_sync call does): this loop cannot run its head until that work is done.
        worker = threading.Thread(target=lambda: asyncio.run(other_loop()))
        worker.start()
        worker.join(20)
        assert not worker.is_alive(), "the other loop's waiter was held up by this loop"
        await head
        limiter.release()

    asyncio.run(blocked_loop())
    assert len(served) == 1
    assert limiter.stats().grants == 3
    assert len(limiter.window.line) == 0


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0) as emulator:
        yield emulator


async def test_a_blocking_call_from_a_loop_with_a_waiting_task_gets_its_slot(
    emu: EmulatorThread,
) -> None:
    """The notebook case: a background task of an earlier cell waits at the head of the line,
    then this cell makes a blocking call on the same token and route."""
    limits = RateLimits.documented(0.01).replace(get_current_user=Quota(1, 0.5))
    kwargs = emu.client_kwargs(rate_limits=limits)
    async with AsyncAgent(**kwargs) as background:
        await background.get_current_user()  # the quota is used up for 0.5 s
        task = asyncio.create_task(background.get_current_user())
        await asyncio.sleep(0.05)
        with Agent(**kwargs) as agent:
            result: list[int] = []
            # The blocking call, bounded so that a deadlock fails instead of hanging: this
            # thread (the loop's) waits for it just as a direct blocking call would.
            call = threading.Thread(target=lambda: result.append(agent.get_current_user().id))
            call.start()
            call.join(30)
            assert result == [emu.user_id], "the blocking call never got a slot"
        assert (await task).id == emu.user_id


# --- leaving the line is cheap (issue 14 #16) -----------------------------------------------


async def _cancel_waiters(count: int, order: str) -> float:
    """Seconds the loop spends cancelling ``count`` waiters of a saturated route."""
    limiter = SlidingWindowLimiter(Quota(1, 3600.0), margin=0.0)
    await limiter.acquire()
    tasks = [asyncio.create_task(limiter.acquire()) for _ in range(count)]
    await asyncio.sleep(0.01)
    while any(not t.done() for t in tasks[-1:]) and len(limiter.window.line) < count:
        await asyncio.sleep(0.01)
    if order == "random":
        random.Random(7).shuffle(tasks)
    started = time.perf_counter()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    took = time.perf_counter() - started
    assert len(limiter.window.line) == 0
    return took


def test_cancelling_waiters_in_random_order_costs_what_fifo_order_does() -> None:
    count = 40_000
    fifo = asyncio.run(_cancel_waiters(count, "fifo"))
    shuffled = asyncio.run(_cancel_waiters(count, "random"))
    # O(n) per cancellation made the random order far costlier (31 s against 0.7 s here);
    # O(1) makes them alike (1.1-1.4x here). Generous, for a loaded machine.
    assert shuffled < 4 * fifo + 2.0, (shuffled, fifo)
