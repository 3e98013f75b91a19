"""The smooth limiter: even pacing, one request every ``(window + margin) / limit`` seconds.

Pick it for an even flow (polling loops, background sync, servers or proxies that dislike
bursts); the first N requests then take (N - 1) * T / N instead of going at once.

The pace is a :class:`Metronome`: the instant of the route's next tick, kept behind the
route window's lock. A caller may go when the window has a free slot *and* the tick has
come; going moves the tick one interval on. The sliding-window log of the same route (the
:class:`~.window.RouteWindow` every client of the token shares, whatever its mode) keeps
guarding the quota, so slow answers or jitter never put more than ``limit`` requests into
one window, and a window-mode client on the same token counts against the same quota. So
:class:`SmoothLimiter` is the window limiter with one more thing to wait for: it only
overrides what a caller waits for and what going does.

Earlier versions paced with ``aiolimiter`` on a private event loop in a daemon thread,
because an ``AsyncLimiter`` binds to one loop and is not thread-safe; one float under the
lock the window already takes does the same for every loop and thread, with no thread,
no hop between loops, and no cancelled tick to hand back.
"""

from __future__ import annotations

import math
from typing import ClassVar

from .._endpoints import Quota
from .quotas import DEFAULT_MARGIN, DEFAULT_MAX_HOLD
from .window import GrantHook, RouteWindow, SlidingWindowLimiter

__all__ = ["Metronome", "SmoothLimiter"]


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


class SmoothLimiter(SlidingWindowLimiter):
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

    __slots__ = ("metronome",)
    mode: ClassVar[str] = "smooth"

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
        super().__init__(
            quota, margin=margin, name=name, max_hold=max_hold, on_grant=on_grant, shared=shared
        )
        self.metronome = metronome if metronome is not None else Metronome()

    def __repr__(self) -> str:
        return f"<SmoothLimiter {self.name or '?'} {self.quota} every {self.interval:.3f}s>"

    @property
    def interval(self) -> float:
        """Seconds between two requests: the route's ``(window + margin) / limit``."""
        return self.window.span / self.window.limit

    def delay_locked(self, now: float) -> float:
        """0.0 when the window has a slot and the tick has come, else the seconds until then."""
        return max(self.window.delay_locked(now), self.metronome.delay(now))

    def at_least_locked(self, now: float, ahead: int) -> float:
        """A lower bound of the wait: the window's, and the ticks of those ahead."""
        pace = self.metronome.delay(now) + ahead * self.interval
        return max(self.window.at_least_locked(now, ahead), pace)

    def grant_locked(self, now: float) -> None:
        """This caller goes at ``now``: the next tick is one interval on."""
        self.window.grant_locked(now)
        self.metronome.tick(now, self.interval)
