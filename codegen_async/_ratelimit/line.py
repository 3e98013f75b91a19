"""The first-come line of one route: the one wait-turn loop every limiter kind uses.

A caller that finds no free slot (or others already waiting) joins the route's line and
waits for its turn; only a caller whose turn it is asks its limiter for a slot
(:meth:`Claimant.claim`: the window log, the smooth pace, or a Redis script). The line is
shared by every thread and event loop of the process: it sits behind a ``threading.Lock``,
and each waiter parks on a future of its *own* loop, woken with ``call_soon_threadsafe``.

Order. Each loop has its own FIFO queue, and a ticket drawn at joining orders the loops'
queues against each other: the waiter with the smallest ticket goes first. A loop that
leaves its first waiter unattended for more than :data:`GRACE` seconds after it was due
(its thread is blocked: a blocking ``codegen_sync`` call made on that thread, a debugger) is
*stalled*, and the waiters of other loops behind it may claim past it. So a blocked loop
cannot hold up the others: without this, a task waiting at the head on loop A and a blocking
call from loop A's thread on the same route wait for each other forever. Within one loop the
order is strict. Only the first waiter of each loop watches (a timer while it is not its
turn); the others sleep until woken, so a saturated line costs nothing per waiter.

Leaving is O(1): a cancelled waiter (or one whose deadline passed) is marked gone and is
dropped when it reaches the front of its queue; if it was first, the next ones are woken at
once. A loop closed under its waiters drops them all.

Deadlines. ``wait(claimant, deadline)`` raises :class:`QuotaWaitExceeded` at once when the
claimant's lower bound of the wait already ends after the deadline (at joining, and after
each claim), and otherwise when the deadline passes; either way the waiter leaves the line
without a slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from .limiter import QuotaWaitExceeded

__all__ = ["GRACE", "Claimant", "Line", "running_loop"]

log = logging.getLogger("codegen_async.ratelimit")

GRACE: Final = 0.25
"""Seconds a loop may leave its due waiter unattended before others may pass it."""

_MIN_PARK: Final = 0.0005  # never spin: the shortest nap between two looks


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop of this thread, or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Claimant(Protocol):
    """What a limiter gives the line: how to take a slot and how long a wait must be."""

    @property
    def name(self) -> str:
        """The operation's name, for log lines and errors."""
        ...

    async def claim(self) -> tuple[float, float]:
        """Take a slot if one is free now.

        Returns:
            ``(0.0, 0.0)`` when a slot was taken, else ``(sleep, at_least)``: seconds to
            wait before looking again (a release may wake the waiter sooner), and a lower
            bound of the wait for a slot (checked against deadlines).
        """
        ...

    def estimate_locked(self, now: float, ahead: int) -> float:
        """A lower bound of the wait of a caller with ``ahead`` waiters before it.

        Called with the line's lock held.
        """
        ...


class _Waiter:
    """One caller in line; it parks on a future of its own loop."""

    __slots__ = ("due", "future", "gone", "loop", "ticket", "woken")

    def __init__(self, loop: asyncio.AbstractEventLoop, ticket: int, now: float) -> None:
        self.loop = loop
        self.ticket = ticket
        self.due = now  # when it is expected to run next; it runs now
        self.future: asyncio.Future[None] | None = None
        self.woken = False
        self.gone = False

    def arm(self) -> asyncio.Future[None]:
        """A fresh future to park on (call with the line's lock held)."""
        self.future = self.loop.create_future()
        self.woken = False
        return self.future


async def _park(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], timeout: float | None
) -> None:
    """Wait until ``future`` is resolved (by a waker) or ``timeout`` seconds passed."""
    timer = None if timeout is None else loop.call_later(timeout, _resolve, future)
    try:
        await future
    finally:
        if timer is not None:
            timer.cancel()


class Line:
    """The waiters of one route, from any thread and event loop, first come first served.

    Args:
        clock: Monotonic clock in seconds; it must agree with the loops' ``time()``.
        lock: The lock guarding the line (and, usually, the limiter's own state).
    """

    __slots__ = ("_queues", "_tickets", "clock", "live", "lock")

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, lock: threading.Lock | None = None
    ) -> None:
        self.clock = clock
        self.lock = lock if lock is not None else threading.Lock()
        self.live = 0  # waiters in line (not counting those gone)
        self._queues: dict[asyncio.AbstractEventLoop, deque[_Waiter]] = {}
        self._tickets = 0

    def __len__(self) -> int:
        return self.live

    def __repr__(self) -> str:
        return f"<Line waiting={self.live} loops={len(self._queues)}>"

    # --- the wait-turn loop ---------------------------------------------------------------
    async def wait(self, claimant: Claimant, deadline: float | None = None) -> float:
        """Queue, wait for this caller's turn, and let ``claimant`` take a slot.

        Returns:
            The seconds spent in line; 0.0 when the slot was had without parking.

        Raises:
            QuotaWaitExceeded: no slot before ``deadline`` (nothing was taken).
        """
        loop = asyncio.get_running_loop()
        clock = self.clock
        with self.lock:
            start = clock()
            waiter = self._join_locked(loop, start)
            ahead = self.live - 1
            at_least = claimant.estimate_locked(start, ahead)
        parked = False
        try:
            if deadline is not None and start + at_least > deadline:
                raise QuotaWaitExceeded(at_least, claimant.name)
            while True:
                with self.lock:
                    now = clock()
                    future = waiter.arm()  # armed before claiming: no wake-up gets lost
                    turn = self._may_claim_locked(waiter, now)
                    timeout = None if turn else self._watch_locked(waiter, now)
                if turn:
                    sleep, at_least = await claimant.claim()
                    if sleep <= 0.0:
                        return clock() - start if parked else 0.0
                    now = clock()
                    if deadline is not None and now + at_least > deadline:
                        raise QuotaWaitExceeded(at_least, claimant.name)
                    timeout = max(sleep, _MIN_PARK)
                if deadline is not None:
                    left = deadline - now
                    if left <= 0.0:
                        with self.lock:
                            at_least = claimant.estimate_locked(now, 0)
                        raise QuotaWaitExceeded(at_least, claimant.name)
                    if timeout is None or left < timeout:
                        timeout = left
                with self.lock:
                    waiter.due = math.inf if timeout is None else now + timeout
                if not parked and log.isEnabledFor(logging.DEBUG):
                    log.debug(
                        "rate limit %s: waiting, %d ahead, at least %.3fs",
                        claimant.name,
                        ahead,
                        at_least,
                    )
                parked = True
                await _park(loop, future, timeout)
        finally:
            with self.lock:
                self._leave_locked(waiter)

    # --- the state, all under self.lock ----------------------------------------------------
    def _join_locked(self, loop: asyncio.AbstractEventLoop, now: float) -> _Waiter:
        waiter = _Waiter(loop, self._tickets, now)
        self._tickets += 1
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = deque()
        queue.append(waiter)
        self.live += 1
        return waiter

    def _may_claim_locked(self, waiter: _Waiter, now: float) -> bool:
        """Whether it is ``waiter``'s turn: first of its loop, and every loop's first waiter
        that came before it is stalled."""
        queue = self._queues.get(waiter.loop)
        if queue is None or queue[0] is not waiter:
            return False
        dead = []
        for loop, other in self._queues.items():
            head = other[0]
            if loop is waiter.loop or head.ticket > waiter.ticket:
                continue
            if loop.is_closed():
                dead.append(loop)
            elif head.due + GRACE >= now:
                return False  # a live waiter of another loop is ahead
        for loop in dead:
            self._drop_loop_locked(loop)
        return True

    def _watch_locked(self, waiter: _Waiter, now: float) -> float | None:
        """How long a waiter whose turn it is not may sleep before looking again.

        ``None`` (until woken) unless it is first of its loop: then until every loop ahead
        of it would count as stalled.
        """
        queue = self._queues.get(waiter.loop)
        if queue is None or queue[0] is not waiter:
            return None
        latest = -math.inf
        for loop, other in self._queues.items():
            head = other[0]
            if loop is not waiter.loop and head.ticket < waiter.ticket:
                latest = max(latest, head.due)
        if latest == math.inf:
            return None
        return max(latest + GRACE - now, _MIN_PARK)

    def _leave_locked(self, waiter: _Waiter) -> None:
        """``waiter`` is done (slot taken, cancelled, or past its deadline)."""
        if waiter.gone:
            return
        waiter.gone = True
        self.live -= 1
        queue = self._queues.get(waiter.loop)
        if queue is None or queue[0] is not waiter:
            return  # dropped in the middle: skipped once it reaches the front
        queue.popleft()
        while queue and queue[0].gone:
            queue.popleft()
        if not queue:
            del self._queues[waiter.loop]
        self.wake_locked()

    def _drop_loop_locked(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget every waiter of a closed loop: those tasks will never run again."""
        for waiter in self._queues.pop(loop, ()):
            if not waiter.gone:
                waiter.gone = True
                self.live -= 1

    def wake_locked(self) -> None:
        """Let the first waiter of every loop look again (a slot may be free).

        Call with the lock held, after anything that may free a slot or change whose
        turn it is: a release, a slot given back, a waiter leaving the front.
        """
        if not self._queues:
            return
        now = self.clock()
        running = running_loop()
        dead = []
        for loop, queue in self._queues.items():
            head = queue[0]
            future = head.future
            if future is None or head.woken:
                continue  # running right now, or woken already
            head.woken = True
            head.due = min(head.due, now)
            if loop is running:
                _resolve(future)
                continue
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # its loop is closed: those tasks will never run again
                dead.append(loop)
        for loop in dead:
            self._drop_loop_locked(loop)
