"""Server-side rate limits: the endpoint table's quotas, per route template and per token.

``fixed``: a window opens at the first request after the previous one closed and admits
``limit`` requests until it closes (a Redis ``INCR`` + ``EXPIRE`` counter works this way).
``sliding``: a log of the last ``limit`` admissions; a request is admitted when fewer than
``limit`` fall within the last ``window`` seconds. Refused requests are not counted.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from .._endpoints import Quota

__all__ = ["RateLimitMode", "ServerRateLimiter", "format_retry_after"]

RateLimitMode = Literal["fixed", "sliding", "off"]


def format_retry_after(seconds: float, time_scale: float) -> str:
    """``Retry-After`` for a wait of ``seconds``.

    Whole seconds, rounded up, at real speed (as the service sends); with a time scale below
    1, a decimal with millisecond precision, so that a scaled-down window is not rounded up
    to a full second.
    """
    if time_scale >= 1.0:
        return str(max(1, math.ceil(seconds)))
    return f"{max(seconds, 0.001):.3f}"


class ServerRateLimiter:
    """Admits or refuses each request; one counter per (token, route template)."""

    __slots__ = ("_clock", "_fixed", "_sliding", "mode", "time_scale")

    def __init__(
        self,
        mode: RateLimitMode,
        time_scale: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in ("fixed", "sliding", "off"):
            raise ValueError(f"rate_limit must be 'fixed', 'sliding' or 'off', got {mode!r}")
        self.mode = mode
        self.time_scale = time_scale
        self._clock = clock
        self._fixed: dict[tuple[str, str], list[float]] = {}
        self._sliding: dict[tuple[str, str], deque[float]] = {}

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def hit(self, token: str, route: str, quota: Quota) -> float | None:
        """Count one request; ``None`` if admitted, else the seconds until it would be."""
        window = quota.window * self.time_scale
        now = self._clock()
        key = (token, route)
        if self.mode == "fixed":
            entry = self._fixed.get(key)
            if entry is None or now >= entry[0] + window:
                self._fixed[key] = [now, 1.0]
                return None
            if entry[1] >= quota.limit:
                return entry[0] + window - now
            entry[1] += 1.0
            return None
        if self.mode == "sliding":
            log = self._sliding.get(key)
            if log is None:
                log = self._sliding[key] = deque()
            horizon = now - window
            while log and log[0] <= horizon:
                log.popleft()
            if len(log) >= quota.limit:
                return log[0] + window - now
            log.append(now)
            return None
        return None

    def reset(self) -> None:
        """Forget every counter."""
        self._fixed.clear()
        self._sliding.clear()
