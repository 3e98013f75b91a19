"""Where waits and the poller meet: the events a poller delivers and a caller's subscription.

A wait subscribes to runs and reads :class:`RunEvent` objects from its :class:`Subscription`;
the poller (``_engine``) delivers them. :class:`MinShare` keeps the smallest ``poll_share``
of the subscriptions that still wait, which paces the poller. These objects exist once per
waiting caller, so they are slotted and hold nothing they do not need (see the figures in
``tests/polling/test_polling_poller.py``: under 3 KB per waiting run, task included).
"""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Final, Protocol

import attrs

from ..models import AgentRun

__all__ = ["DEFAULT_POLL_SHARE", "MinShare", "RunEvent", "RunWatcher", "Subscription"]

DEFAULT_POLL_SHARE: Final = 0.5
"""Share of a route's quota that polling may spend by default; the rest is the caller's."""


def _traceback_of(event: RunEvent) -> TracebackType | None:
    return None if event.error is None else event.error.__traceback__


@attrs.frozen
class RunEvent:
    """A run's new status (``run``), the end of its wait (``error``), or of every wait.

    One error may end many waits (a run two callers wait on; a refused token ends them
    all), so each raises it with ``traceback``, the one it had when the event was made, as
    ``asyncio.Future.result`` does: raised as is, its traceback would grow with every wait
    that raised it before (10,000 waits, 20,000 frames).
    """

    run_id: int
    run: AgentRun | None = None
    error: BaseException | None = None
    fatal: bool = False
    traceback: TracebackType | None = attrs.field(
        default=attrs.Factory(_traceback_of, takes_self=True), repr=False
    )


class Subscription:
    """One caller's interest in some runs; the poller delivers their events to it.

    Kept small on purpose, since 10,000 concurrent waits hold 10,000 of them. The reader
    awaits :meth:`get`, a plain future that :meth:`deliver` resolves with the event itself:
    no queue (an ``asyncio.Queue`` is four deques and an ``Event``, about 3 KB), no task,
    no coroutine frame. Events that arrive while nobody reads wait in a deque that exists
    only while it holds some; a deadline is a timer handle on the loop.

    ``run_ids`` are the runs asked for; ``pending`` counts those still being polled for it
    (its ``share`` counts towards the poller's pace while it is not 0).
    """

    __slots__ = (
        "_events",
        "_sink",
        "_timer",
        "_waiter",
        "org_id",
        "pending",
        "poll_interval",
        "run_ids",
        "share",
    )

    def __init__(
        self,
        org_id: int,
        run_ids: Iterable[int],
        poll_interval: float | None,
        share: float,
        sink: Callable[[RunEvent], None] | None = None,
    ) -> None:
        self.org_id = org_id
        self.run_ids: tuple[int, ...] = tuple(dict.fromkeys(run_ids))
        self.pending = 0
        self.poll_interval = poll_interval
        self.share = share
        self._events: deque[RunEvent] | None = None
        self._waiter: asyncio.Future[RunEvent | None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sink = sink  # a relay: events go to it instead of a reader

    def __repr__(self) -> str:
        return f"<Subscription org={self.org_id} runs={len(self.run_ids)} pending={self.pending}>"

    def deliver(self, event: RunEvent) -> None:
        """Hand an event to the waiting reader, or keep it for the next :meth:`get`."""
        if self._sink is not None:
            self._sink(event)
            return
        waiter = self._waiter
        if waiter is not None:
            self.close()
            if not waiter.done():  # else the reader was cancelled: keep the event
                waiter.set_result(event)
                return
        events = self._events
        if events is None:
            events = self._events = deque()
        events.append(event)

    def get(self, deadline: float | None = None) -> asyncio.Future[RunEvent | None]:
        """A future of the next event; of ``None`` once the loop's clock reaches ``deadline``.

        Events delivered before the deadline are returned even when it has passed. One
        reader at a time: a new call replaces a pending one.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[RunEvent | None] = loop.create_future()
        events = self._events
        if events:
            waiter.set_result(events.popleft())
            if not events:
                self._events = None  # an idle wait holds no deque
        elif deadline is not None and loop.time() >= deadline:
            waiter.set_result(None)
        else:
            self.close()
            self._waiter = waiter
            if deadline is not None:
                self._timer = loop.call_at(deadline, self._expire)
        return waiter

    def close(self) -> None:
        """Forget the pending :meth:`get` and cancel its timer (the reader is gone)."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._waiter = self._timer = None

    def _expire(self) -> None:
        waiter = self._waiter
        self._waiter = self._timer = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class MinShare:
    """The smallest share asked for by the active subscriptions, in O(log n) a change.

    A count per distinct share and a heap of them; a share whose count falls to 0 leaves
    the heap when it reaches the top (or when stale entries outnumber live ones).
    """

    __slots__ = ("_counts", "_heap")

    def __init__(self) -> None:
        self._counts: dict[float, int] = {}
        self._heap: list[float] = []

    def add(self, share: float) -> None:
        count = self._counts.get(share, 0)
        if not count:
            heapq.heappush(self._heap, share)
        self._counts[share] = count + 1

    def remove(self, share: float) -> None:
        count = self._counts[share] - 1
        if count:
            self._counts[share] = count
            return
        del self._counts[share]
        if len(self._heap) > 2 * len(self._counts) + 16:
            self._heap = list(self._counts)
            heapq.heapify(self._heap)

    def smallest(self, default: float) -> float:
        heap = self._heap
        while heap and heap[0] not in self._counts:
            heapq.heappop(heap)
        return heap[0] if heap else default


class RunWatcher(Protocol):
    """What a wait needs: subscribe to runs, and release the subscription when done.

    The client's poller is one; a fleet-wide watcher sharing one poller between processes
    is another. Both deliver the same :class:`RunEvent` objects.
    """

    def subscribe(
        self,
        org_id: int,
        run_ids: Iterable[int],
        *,
        poll_interval: float | None = None,
        share: float = DEFAULT_POLL_SHARE,
    ) -> Subscription:
        """Start watching runs; their status changes are delivered to the subscription."""
        ...

    async def release(self, sub: Subscription) -> None:
        """Stop watching the subscription's runs (its wait ended)."""
        ...
