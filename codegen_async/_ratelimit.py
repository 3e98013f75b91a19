"""Client-side rate limiting that mirrors the API's documented per-route quotas.

The default limiter is a sliding-window log: it admits at most N requests in any window of
T seconds for one route and credential, lets the first N go at once, and each slot comes
back T (plus a small margin for network jitter) after it was spent. It is safe against both
fixed-window and sliding-window servers.

Limiters are shared by every client in the process that talks to the same base URL with the
same token (two ``AsyncAgent`` objects, the sync ``Agent``, several threads), and are kept
apart for different tokens. They are thread-safe and not bound to any event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Literal, Protocol

import attrs

from ._endpoints import ENDPOINTS, Endpoint, Quota

__all__ = ["Limiter", "LimiterRegistry", "RateLimits", "SlidingWindowLimiter"]

log = logging.getLogger("codegen_async.ratelimit")

Mode = Literal["window", "smooth"]


@attrs.frozen
class RateLimits:
    """Per-operation quotas the client keeps to.

    ``RateLimits.documented()`` is the default: the documented quota of every operation.
    Override single entries with :meth:`replace`, or turn limiting off with
    :meth:`disabled`. ``mode="window"`` (default) allows bursts up to the quota;
    ``mode="smooth"`` spaces requests evenly (one every T/N seconds). ``margin`` is extra
    time, in seconds, before a spent slot comes back, to absorb network jitter.
    """

    quotas: Mapping[str, Quota | None] = attrs.field(factory=dict)
    mode: Mode = "window"
    margin: float = 0.05
    enabled: bool = True

    @classmethod
    def documented(cls, scale: float = 1.0, *, mode: Mode = "window") -> RateLimits:
        """The documented quotas with every window multiplied by ``scale``."""
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        return cls(
            {name: e.quota.scaled(scale) for name, e in ENDPOINTS.items()},
            mode=mode,
            margin=0.05 * min(scale, 1.0),
        )

    @classmethod
    def disabled(cls) -> RateLimits:
        """No client-side limiting at all (the server's 429s are still retried)."""
        return cls({}, enabled=False)

    def replace(self, **quotas: Quota | None) -> RateLimits:
        """A copy with some operations' quotas replaced (``None`` leaves one unlimited)."""
        unknown = set(quotas) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown operations: {', '.join(sorted(unknown))}")
        return attrs.evolve(self, quotas={**self.quotas, **quotas})

    def for_endpoint(self, endpoint: Endpoint) -> Quota | None:
        """The quota to keep for one operation, or ``None`` for no limit."""
        if not self.enabled:
            return None
        return self.quotas.get(endpoint.name)


class Limiter(Protocol):
    """What the transport needs from a limiter of one route."""

    async def acquire(self) -> float:
        """Wait for a slot; return the seconds spent waiting."""
        ...

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` (the server said 429)."""
        ...


class SlidingWindowLimiter:
    """At most ``quota.limit`` grants in any ``quota.window`` seconds, first come first served.

    Each caller reserves the earliest slot that keeps the log within quota, then sleeps until
    it. Reservations are made in call order, so callers are served first come, first served;
    a caller cancelled while it waits gives its slot back.
    """

    def __init__(self, quota: Quota, *, margin: float = 0.05, name: str = "") -> None:
        self.quota = quota
        self.margin = margin
        self.name = name
        self._lock = threading.Lock()
        self._grants: deque[float] = deque()
        self._blocked_until = 0.0
        self.waited_seconds = 0.0
        self.waits = 0

    def _reserve(self) -> float:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._blocked_until)
            if len(self._grants) >= self.quota.limit:
                slot = max(slot, self._grants[-self.quota.limit] + self.quota.window + self.margin)
            self._grants.append(slot)
            while len(self._grants) > self.quota.limit:
                self._grants.popleft()
            return slot - now

    def _release(self, delay_from: float) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._grants.remove(delay_from)

    async def acquire(self) -> float:
        delay = self._reserve()
        if delay <= 0:
            return 0.0
        slot = time.monotonic() + delay
        log.debug("rate limit %s (%s): waiting %.3fs", self.name, self.quota, delay)
        try:
            await asyncio.sleep(delay)
        except BaseException:
            self._release_slot_near(slot)
            raise
        with self._lock:
            self.waited_seconds += delay
            self.waits += 1
        return delay

    def _release_slot_near(self, slot: float) -> None:
        with self._lock:
            best = min(self._grants, key=lambda g: abs(g - slot), default=None)
            if best is not None and abs(best - slot) < 1e-3 and best > time.monotonic():
                self._grants.remove(best)

    def penalize(self, seconds: float) -> None:
        with self._lock:
            until = time.monotonic() + max(seconds, 0.0)
            if until > self._blocked_until:
                self._blocked_until = until
                log.debug("rate limit %s: closed for %.3fs after a 429", self.name, seconds)


def token_fingerprint(token: str) -> str:
    """A short, one-way name for a token, safe to use in keys and logs."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class LimiterRegistry:
    """Process-wide limiters, one per (base URL, token, route, quota, mode)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limiters: dict[tuple[str, str, str, Quota, str], SlidingWindowLimiter] = {}

    def get(
        self,
        base_url: str,
        token: str,
        endpoint: Endpoint,
        limits: RateLimits,
        *,
        backend: str | None = None,
    ) -> Limiter | None:
        quota = limits.for_endpoint(endpoint)
        if quota is None:
            return None
        if backend is not None:
            raise NotImplementedError("the redis rate-limit backend is not built yet")
        if limits.mode == "smooth":
            quota = Quota(1, quota.window / quota.limit)
        key = (base_url, token_fingerprint(token), endpoint.route, quota, limits.mode)
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = SlidingWindowLimiter(quota, margin=limits.margin, name=endpoint.name)
                self._limiters[key] = limiter
            return limiter

    def clear(self) -> None:
        """Forget every limiter (tests use this between cases)."""
        with self._lock:
            self._limiters.clear()


REGISTRY = LimiterRegistry()
