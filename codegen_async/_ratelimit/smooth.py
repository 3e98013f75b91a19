"""The smooth limiter: even pacing, one request every ``(window + margin) / limit`` seconds.

Pick it for an even flow (polling loops, background sync, servers or proxies that dislike
bursts); the first N requests then take (N - 1) * T / N instead of going at once.

The pace is a :class:`Metronome`: the instant of the route's next tick, kept behind the
route window's lock. A caller may go when the window has a free slot *and* the tick has
come; going moves the tick one interval on. The sliding-window log of the same route (the
:class:`~.window.RouteWindow` every client of the token shares, whatever its mode) keeps
guarding the quota, so slow answers or jitter never put more than ``limit`` requests into
one window, and a window-mode client on the same token counts against the same quota.

Earlier versions paced with ``aiolimiter`` on a private event loop in a daemon thread,
because an ``AsyncLimiter`` binds to one loop and is not thread-safe; one float under the
lock the window already takes does the same for every loop and thread, with no thread,
no hop between loops, and no cancelled tick to hand back.
"""

from __future__ import annotations

import logging
import math

from .._endpoints import Quota
from .limiter import LimiterStats
from .quotas import DEFAULT_MARGIN, DEFAULT_MAX_HOLD
from .window import GrantHook, RouteWindow

__all__ = ["Metronome", "SmoothLimiter"]

log = logging.getLogger("codegen_async.ratelimit")


class Metronome:
    """The next tick of one route's even pace; every method runs under the window's lock."""

    __slots__ = ("next_tick",)

    def __init__(self) -> None:
        self.next_tick = -math.inf

    def delay(self, now: float) -> float:
        """Seconds until the next tick (0.0 when it has come)."""
        return max(self.next_tick - now, 0.0)

    def tick(self, now: float, interval: float) -> None:
        """A request goes at ``now``: the next one may go ``interval`` later."""
        self.next_tick = now + interval


class SmoothLimiter:
    """One request every ``(window + margin) / limit`` seconds, first come first served.

    Thread-safe, and usable from several event loops at once. ``on_grant`` is called with
    the ``time.monotonic()`` of every tick.

    Args:
        quota: The limit and window to keep.
        margin: Seconds added to the window.
        name: Operation name, for log lines.
        max_hold: Seconds after which a held slot is reclaimed without :meth:`release`.
        on_grant: Called with the time of every grant (ignored with ``shared``).
        shared: The route's window (the registry passes it, shared with every client of
            the token); by default a window of this limiter's own.
        metronome: The route's pace, shared by the smooth clients of the token.
    """

    __slots__ = ("__weakref__", "metronome", "name", "quota", "window")

    def __init__(
        self,
        quota: Quota,
        *,
        margin: float = DEFAULT_MARGIN,
        name: str = "",
        max_hold: float = DEFAULT_MAX_HOLD,
        on_grant: GrantHook | None = None,
        shared: RouteWindow | None = None,
        metronome: Metronome | None = None,
    ) -> None:
        if shared is None:
            shared = RouteWindow(
                quota, margin=margin, name=name, max_hold=max_hold, on_grant=on_grant
            )
        else:
            shared.adopt(quota, margin, max_hold)
        self.window = shared
        self.metronome = metronome if metronome is not None else Metronome()
        self.quota = quota
        self.name = name or shared.name

    def __repr__(self) -> str:
        return f"<SmoothLimiter {self.name or '?'} {self.quota} every {self.interval:.3f}s>"

    @property
    def interval(self) -> float:
        """Seconds between two requests: the route's ``(window + margin) / limit``."""
        return self.window.span / self.window.limit

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
        """Wait for this caller's tick, first come first served; return the seconds waited.

        Raises:
            QuotaWaitExceeded: no tick before ``deadline`` (a ``time.monotonic()``
                instant); nothing was taken.
        """
        window = self.window
        with window.lock:
            if not window.line.live:
                now = window.clock()
                if self._delay_locked(now) <= 0.0:
                    self._grant_locked(now)
                    return 0.0
        waited = await window.line.wait(self, deadline)
        window.count_wait(waited)
        log.debug("rate limit %s (%s, smooth): waited %.3fs", self.name, self.quota, waited)
        return waited

    def release(self) -> None:
        """The request that used the last tick is over."""
        self.window.release()

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` from now (the server answered 429)."""
        self.window.penalize(seconds)

    # --- the Claimant protocol (called by the line) ----------------------------------------
    def _delay_locked(self, now: float) -> float:
        return max(self.window.delay_locked(now), self.metronome.delay(now))

    def _grant_locked(self, now: float) -> None:
        self.window.grant_locked(now)
        self.metronome.tick(now, self.window.span / self.window.limit)

    async def claim(self) -> tuple[float, float]:
        """Take a tick if it has come and the window has a slot; else how long to wait."""
        window = self.window
        with window.lock:
            now = window.clock()
            delay = self._delay_locked(now)
            if delay <= 0.0:
                self._grant_locked(now)
                return 0.0, 0.0
            return delay, max(window.at_least_locked(now), self.metronome.delay(now))

    def estimate_locked(self, now: float, ahead: int) -> float:
        """A lower bound of the wait with ``ahead`` callers in line before this one."""
        pace = self.metronome.delay(now) + ahead * self.interval
        return max(self.window.at_least_locked(now, ahead), pace)
