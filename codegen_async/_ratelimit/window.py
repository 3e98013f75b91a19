"""The sliding-window log of one route, and the default ("window") limiter on it.

At most N requests are in any window of T seconds for one route and token, the first N go
at once, and each slot comes back T seconds (plus a small ``margin``) after the *answer* to
the request that used it arrived. Anchoring on the answer rather than on the moment of
sending makes it safe against fixed- and sliding-window servers whatever the network
jitter: the server saw the request before it answered, so two requests N apart always
reach it more than T apart. The price is one answer's latency (plus the margin) per window:
well under 1 % of a 30-60 s window.

:class:`RouteWindow` is the state one route of one token shares between every client of the
process, whatever their mode: the log (slots *held* from the grant until
:meth:`RouteWindow.release`, then *spent* for ``window + margin``), the 429 pause, the
counters, and the route's :class:`~.line.Line`. A slot never released is reclaimed after
``max_hold`` seconds. Clients that configure different quotas for one route share it too:
the strictest applies (smallest limit, longest window), since the server keeps one.

:class:`SlidingWindowLimiter` is the window-mode limiter on a ``RouteWindow``; the smooth
mode (``smooth.py``) adds even pacing on the same window. The common case -- a slot free and
nobody waiting -- is one lock, two deque checks and an append, with nothing allocated.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar, Final

from .._endpoints import Quota
from .limiter import LimiterStats
from .line import Line
from .quotas import DEFAULT_MARGIN, DEFAULT_MAX_HOLD, check_quota

__all__ = ["Clock", "GrantHook", "RouteWindow", "SlidingWindowLimiter"]

log = logging.getLogger("codegen_async.ratelimit")

Clock = Callable[[], float]
GrantHook = Callable[[float], None]
_NEVER: Final = -math.inf


class RouteWindow:
    """The sliding-window log of one route and token, shared by every client on them.

    Thread-safe, and usable from several event loops at once: every field sits behind
    :attr:`lock` (the line's lock too).

    Args:
        quota: The limit and window to keep.
        margin: Seconds added to the window.
        name: Operation name, for log lines.
        max_hold: Seconds after which a held slot is reclaimed without a release.
        clock: Monotonic clock in seconds; it must agree with the loops' ``time()``
            (both default to ``time.monotonic``).
        on_grant: Called with the clock's time of every grant (metrics, tests); keep it
            cheap, it runs under the lock.
    """

    __slots__ = (
        "__weakref__",
        "blocked_until",
        "clock",
        "grants",
        "held",
        "limit",
        "line",
        "lock",
        "margin",
        "max_hold",
        "name",
        "on_grant",
        "penalties",
        "quota",
        "span",
        "spent",
        "waited",
        "waits",
    )

    def __init__(
        self,
        quota: Quota,
        *,
        margin: float = DEFAULT_MARGIN,
        name: str = "",
        max_hold: float = DEFAULT_MAX_HOLD,
        clock: Clock = time.monotonic,
        on_grant: GrantHook | None = None,
    ) -> None:
        check_quota(quota)
        if not margin >= 0 or not max_hold >= 0:
            raise ValueError("margin and max_hold must be non-negative")
        self.quota = quota
        self.limit = quota.limit
        self.margin = margin
        self.span = quota.window + margin  # how long a slot stays spent after its answer
        self.max_hold = max_hold
        self.name = name
        self.clock = clock
        self.on_grant = on_grant
        self.lock = threading.Lock()
        self.line = Line(clock, self.lock)
        self.held: deque[float] = deque()  # instants after which held slots are reclaimed
        self.spent: deque[float] = deque()  # instants at which released slots come back
        self.blocked_until = _NEVER
        self.grants = 0
        self.waits = 0
        self.waited = 0.0
        self.penalties = 0

    def __repr__(self) -> str:
        return (
            f"<RouteWindow {self.name or '?'} {self.limit}/{self.span:g}s "
            f"held={len(self.held)} spent={len(self.spent)} waiting={self.line.live}>"
        )

    def adopt(self, quota: Quota, margin: float, max_hold: float) -> None:
        """One more client keeps ``quota`` on this route: the strictest quota applies."""
        check_quota(quota)
        with self.lock:
            limit = min(self.limit, quota.limit)
            span = max(self.span, quota.window + margin)
            if (limit, span) != (self.limit, self.span):
                log.info(
                    "rate limit %s: clients on one token keep different quotas (%s and %s); "
                    "keeping the strictest, %d per %.3gs",
                    self.name,
                    self.quota,
                    quota,
                    limit,
                    span,
                )
                self.limit, self.span = limit, span
                self.quota = Quota(limit, span - max(self.margin, margin))
            self.margin = max(self.margin, margin)
            self.max_hold = max(self.max_hold, max_hold)

    def set_limit(self, limit: int) -> None:
        """Keep ``limit`` requests per window from now on (a fleet's share while Redis is
        down; never above the quota)."""
        with self.lock:
            self.limit = max(1, min(limit, self.quota.limit))

    # --- the log, all under self.lock ------------------------------------------------------
    def delay_locked(self, now: float) -> float:
        """0.0 when a slot is free now, else the seconds until one surely is.

        A release can free a slot sooner: it wakes the line.
        """
        spent, held = self.spent, self.held
        while spent and spent[0] <= now:
            spent.popleft()
        if held and held[0] <= now:
            self._reclaim_locked(now)
        delay = self.blocked_until - now
        if len(spent) + len(held) >= self.limit:
            first_back = min(spent[0] if spent else math.inf, held[0] if held else math.inf)
            delay = max(delay, first_back - now)
        return max(delay, 0.0)

    def at_least_locked(self, now: float, ahead: int = 0) -> float:
        """A lower bound of the wait of a caller with ``ahead`` callers before it.

        Slots come back in order: the spent ones at known instants, then the held ones
        (one span after a release at the earliest); a slot taken again by a caller ahead
        comes back one span after its previous return at the earliest.
        """
        spent, held = self.spent, self.held
        used = len(spent) + len(held)
        index = used - self.limit + ahead  # which return, counting from now, this caller needs
        rounds = 0
        if index >= used:  # beyond every slot in use: a slot reused by callers ahead
            rounds = (index - used) // self.limit + 1
            index -= rounds * self.limit
        if index < 0:
            back = now
        elif index < len(spent):
            back = spent[index]
        else:
            back = now + min(self.span, held[0] - now)
        return max(self.blocked_until - now, back + rounds * self.span - now, 0.0)

    def _reclaim_locked(self, now: float) -> None:
        held = self.held
        while held and held[0] <= now:
            held.popleft()
            log.warning(
                "rate limit %s: a slot was held %.0fs without being released; reclaimed",
                self.name,
                self.max_hold,
            )

    def grant_locked(self, now: float) -> None:
        """Take a slot at ``now`` (the caller checked that one is free)."""
        self.held.append(now + self.span + self.max_hold)
        self.grants += 1
        if self.on_grant is not None:
            try:
                self.on_grant(now)
            except Exception:  # a metrics hook must not break rate limiting
                log.exception("rate limit %s: on_grant hook failed", self.name)

    def count_wait(self, seconds: float) -> None:
        """Add one wait of ``seconds`` to the counters."""
        with self.lock:
            self.waits += 1
            self.waited += seconds

    def idle(self) -> bool:
        """No slot held or spent, no 429 pause, nobody waiting: forgetting it loses nothing."""
        with self.lock:
            now = self.clock()
            self.delay_locked(now)
            return not (self.held or self.spent or self.line.live) and self.blocked_until <= now

    # --- shared by every limiter kind on this window ----------------------------------------
    def release(self) -> None:
        """The oldest held slot's request is over: it comes back ``span`` seconds from now."""
        with self.lock:
            if not self.held:
                return  # reclaimed already, or a release without an acquire
            self.held.popleft()
            self.spent.append(self.clock() + self.span)
            if self.line.live:
                self.line.wake_locked()

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` from now (the server answered 429)."""
        with self.lock:
            until = self.clock() + max(seconds, 0.0)
            self.penalties += 1
            if until > self.blocked_until:
                self.blocked_until = until
                log.debug("rate limit %s: closed for %.3fs after a 429", self.name, seconds)

    def stats(self) -> LimiterStats:
        """A snapshot of the route's counters."""
        with self.lock:
            return LimiterStats(self.grants, self.waits, self.waited, self.penalties)


class SlidingWindowLimiter:
    """At most ``quota.limit`` requests in any ``quota.window`` seconds, first come first served.

    A slot is *held* from the grant until :meth:`release` (the answer arrived) and then
    *spent* for ``window + margin`` seconds. A slot never released is reclaimed after
    ``max_hold`` seconds. Thread-safe, and usable from several event loops at once.

    Args:
        quota: The limit and window to keep.
        margin: Seconds added to the window.
        name: Operation name, for log lines.
        max_hold: Seconds after which a held slot is reclaimed without :meth:`release`.
        clock: Monotonic clock in seconds (ignored with ``shared``).
        on_grant: Called with the clock's time of every grant (ignored with ``shared``).
        shared: The route's window to keep the quota on, shared with other limiters
            (the registry passes it); by default a window of this limiter's own.
    """

    __slots__ = ("__weakref__", "name", "quota", "window")
    mode: ClassVar[str] = "window"

    def __init__(
        self,
        quota: Quota,
        *,
        margin: float = DEFAULT_MARGIN,
        name: str = "",
        max_hold: float = DEFAULT_MAX_HOLD,
        clock: Clock = time.monotonic,
        on_grant: GrantHook | None = None,
        shared: RouteWindow | None = None,
    ) -> None:
        if shared is None:
            shared = RouteWindow(
                quota, margin=margin, name=name, max_hold=max_hold, clock=clock, on_grant=on_grant
            )
        else:
            shared.adopt(quota, margin, max_hold)
        self.window = shared
        self.quota = quota
        self.name = name or shared.name

    def __repr__(self) -> str:
        return f"<SlidingWindowLimiter {self.name or '?'} {self.quota} on {self.window!r}>"

    @property
    def margin(self) -> float:
        """Seconds added to every window."""
        return self.window.margin

    @property
    def waited_seconds(self) -> float:
        """Total seconds callers spent waiting for this route."""
        return self.window.waited

    @property
    def waits(self) -> int:
        """How many acquisitions had to wait."""
        return self.window.waits

    def stats(self) -> LimiterStats:
        """A snapshot of the route's counters."""
        return self.window.stats()

    # --- the Limiter protocol --------------------------------------------------------------
    async def acquire(self, deadline: float | None = None) -> float:
        """Wait for a slot, first come first served; return the seconds waited.

        Raises:
            QuotaWaitExceeded: no slot before ``deadline`` (a ``time.monotonic()``
                instant); nothing was taken.
        """
        window = self.window
        with window.lock:
            if not window.line.live:
                now = window.clock()
                if self.delay_locked(now) <= 0.0:
                    self.grant_locked(now)
                    return 0.0  # the common case: nothing allocated
        waited = await window.line.wait(self, deadline)
        window.count_wait(waited)
        log.debug("rate limit %s (%s, %s): waited %.3fs", self.name, self.quota, self.mode, waited)
        return waited

    def release(self) -> None:
        """The oldest held slot's request is over: it comes back ``window + margin`` from now."""
        self.window.release()

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` from now (the server answered 429)."""
        self.window.penalize(seconds)

    # --- what this mode waits for (the smooth mode adds its pace), under the window's lock ---
    def delay_locked(self, now: float) -> float:
        """0.0 when this caller may go now, else the seconds until it surely may."""
        return self.window.delay_locked(now)

    def at_least_locked(self, now: float, ahead: int) -> float:
        """A lower bound of the wait with ``ahead`` callers in line before this one."""
        return self.window.at_least_locked(now, ahead)

    def grant_locked(self, now: float) -> None:
        """This caller goes at ``now``."""
        self.window.grant_locked(now)

    # --- the Claimant protocol (called by the line) ----------------------------------------
    async def claim(self) -> tuple[float, float]:
        """Take a slot if one is free now; else ``(seconds to sleep, lower bound)``."""
        with self.window.lock:
            now = self.window.clock()
            delay = self.delay_locked(now)
            if delay <= 0.0:
                self.grant_locked(now)
                return 0.0, 0.0
            return delay, self.at_least_locked(now, 0)

    def estimate_locked(self, now: float, ahead: int) -> float:
        """A lower bound of the wait with ``ahead`` callers in line before this one."""
        return self.at_least_locked(now, ahead)
