"""The process-wide registry of limiters, and the process hooks that keep it sane.

Limiters are shared per *token and route*: the server counts its quotas per token, so every
client of the process on one token -- several ``AsyncAgent`` objects, the sync ``Agent``
(whose loop runs in a background thread), plain threads, any base-URL spelling, either
mode -- keeps one quota per route. The memory backend keeps one
:class:`~.window.RouteWindow` per (token, route); each mode gets a limiter on it (the
smooth ones share one :class:`~.smooth.Metronome`). Tokens are only kept as one-way
fingerprints.

A route is forgotten once no client holds one of its limiters (they are weakly referenced)
*and* its window has nothing live (no slot held or spent, no pause, nobody waiting): a new
client on the same token within the window still sees the history, and a service that calls
with thousands of users' tokens does not grow without bound. Forgotten routes are swept
when the registry has doubled since the last sweep (amortised O(1) per new route).

Process hooks: in a forked child the registry starts afresh (the parent's locks may be held
by threads that do not exist there, and its waiters and connections mean nothing).
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from typing import TYPE_CHECKING, Final

from .._endpoints import Endpoint, Quota
from ..errors import ConfigurationError
from .limiter import Limiter
from .quotas import RateLimits
from .smooth import Metronome, SmoothLimiter
from .window import RouteWindow, SlidingWindowLimiter

if TYPE_CHECKING:
    from .redis import RedisBackend

__all__ = ["REGISTRY", "LimiterRegistry", "credential_fingerprint", "parse_backend"]

_MIN_SWEEP: Final = 256


def credential_fingerprint(token: str) -> str:
    """A one-way name for a token: SHA-256, 32 hex digits."""
    return hashlib.sha256(f"codegen-token\n{token}".encode()).hexdigest()[:32]


def parse_backend(backend: str | None) -> str | None:
    """``None`` for in-process memory, else the Redis URL.

    Raises:
        ConfigurationError: not ``memory`` nor a ``redis://``, ``rediss://`` or
            ``unix://`` URL.
    """
    if backend is None or backend.strip() in ("", "memory", "memory://"):
        return None
    url = backend.strip()
    if url.split("://", 1)[0].lower() in ("redis", "rediss", "unix"):
        return url
    scheme = url.split("://", 1)[0] if "://" in url else "?"
    raise ConfigurationError(
        f"unsupported rate_limit_backend {scheme[:20]!r}: use 'memory' or 'redis://HOST:PORT/DB'"
    )


_RouteKey = tuple[str, str, str]  # backend ("memory" or the Redis URL), fingerprint, route


class _Route:
    """What one token and route share in this process, and who still holds it."""

    __slots__ = ("limiters", "metronome", "shared")

    def __init__(self, shared: RouteWindow | None) -> None:
        self.shared = shared  # None for Redis: its history lives in Redis
        self.metronome: Metronome | None = None
        self.limiters: weakref.WeakValueDictionary[object, Limiter] = weakref.WeakValueDictionary()

    def idle(self) -> bool:
        if len(self.limiters):
            return False
        return self.shared is None or self.shared.idle()


class LimiterRegistry:
    """Process-wide limiters: one quota per (backend, token, route), whatever the mode."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[_RouteKey, _Route] = {}
        self._backends: dict[str, RedisBackend] = {}
        self._sweep_at = _MIN_SWEEP

    def __repr__(self) -> str:
        return f"<LimiterRegistry routes={len(self._routes)} backends={len(self._backends)}>"

    def __len__(self) -> int:
        """How many routes the registry remembers."""
        return len(self._routes)

    def get(
        self,
        token: str,
        endpoint: Endpoint,
        limits: RateLimits,
        *,
        backend: str | None = None,
    ) -> Limiter | None:
        """The limiter of one operation for one token, or ``None`` (no limit).

        Every client that asks for the same token, route, backend and mode gets the same
        limiter while one of them holds it; other modes get one on the same quota.

        Raises:
            ConfigurationError: ``backend`` is not understood, or needs the ``redis``
                extra that is not installed.
        """
        quota = limits.for_endpoint(endpoint)
        if quota is None:
            return None
        redis_url = parse_backend(backend)
        fingerprint = credential_fingerprint(token)
        key = (redis_url or "memory", fingerprint, endpoint.route)
        with self._lock:
            route = self._routes.get(key)
            if route is None:
                if len(self._routes) >= self._sweep_at:
                    self._sweep_locked()
                route = self._routes[key] = _Route(
                    None
                    if redis_url is not None
                    else RouteWindow(
                        quota, margin=limits.margin, name=endpoint.name, max_hold=limits.max_hold
                    )
                )
            # Memory: one limiter per mode on the route's one window (which keeps the
            # strictest quota). Redis: one per mode and quota, each checking its own limit
            # against the route's one sorted set.
            which: object = limits.mode
            if redis_url is not None:
                which = (limits.mode, quota, limits.margin, limits.max_hold)
            limiter = route.limiters.get(which)
            if limiter is None:
                limiter = self._build_locked(route, redis_url, fingerprint, endpoint, quota, limits)
                route.limiters[which] = limiter
            elif route.shared is not None:
                route.shared.adopt(quota, limits.margin, limits.max_hold)
            return limiter

    def _build_locked(
        self,
        route: _Route,
        redis_url: str | None,
        fingerprint: str,
        endpoint: Endpoint,
        quota: Quota,
        limits: RateLimits,
    ) -> Limiter:
        margin, max_hold, name = limits.margin, limits.max_hold, endpoint.name
        if redis_url is not None:
            from .redis import RedisLimiter

            return RedisLimiter(
                self._backend_locked(redis_url),
                fingerprint,
                name,
                quota,
                smooth=limits.mode == "smooth",
                margin=margin,
                max_hold=max_hold,
            )
        if limits.mode == "smooth":
            if route.metronome is None:
                route.metronome = Metronome()
            return SmoothLimiter(
                quota,
                margin=margin,
                name=name,
                max_hold=max_hold,
                shared=route.shared,
                metronome=route.metronome,
            )
        return SlidingWindowLimiter(
            quota, margin=margin, name=name, max_hold=max_hold, shared=route.shared
        )

    def _sweep_locked(self) -> None:
        """Forget routes no client holds and whose window has nothing live."""
        for key in [key for key, route in self._routes.items() if route.idle()]:
            del self._routes[key]
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._routes))

    def sweep(self) -> int:
        """Forget every route no client holds and whose window has nothing live; return
        how many routes are left."""
        with self._lock:
            self._sweep_locked()
            return len(self._routes)

    def _backend_locked(self, url: str) -> RedisBackend:
        backend = self._backends.get(url)
        if backend is None:
            from .redis import RedisBackend

            backend = self._backends[url] = RedisBackend(url)
        return backend

    def redis_backend(self, backend: str | None) -> RedisBackend | None:
        """The shared Redis connections of ``backend`` (``None`` for in-process memory),
        for other process-wide features on the same server (fleet-wide run watching)."""
        url = parse_backend(backend)
        if url is None:
            return None
        with self._lock:
            return self._backend_locked(url)

    def attach(self, backend: str | None, owner: object) -> bool:
        """``owner`` (a client) starts using ``backend`` in the running loop; ``True`` if
        it must :meth:`detach` when it closes (only Redis keeps per-loop connections).

        An owner garbage collected without detaching gives its share back by itself.
        """
        url = parse_backend(backend)
        if url is None:
            return False
        with self._lock:
            redis_backend = self._backend_locked(url)
        redis_backend.attach(owner)
        return True

    async def detach(self, backend: str | None, owner: object) -> None:
        """``owner`` of the running loop stops using ``backend``; the last one closes the
        loop's Redis connections."""
        url = parse_backend(backend)
        if url is None:
            return
        with self._lock:
            redis_backend = self._backends.get(url)
        if redis_backend is not None:
            await redis_backend.detach(owner)

    async def aclose(self) -> None:
        """Close every Redis connection the registry holds and forget every limiter."""
        with self._lock:
            backends = list(self._backends.values())
            self._backends.clear()
            self._routes.clear()
        for redis_backend in backends:
            await redis_backend.aclose()

    def clear(self) -> None:
        """Forget every limiter (tests use this between cases); Redis connections stay
        open until :meth:`detach` or :meth:`aclose`."""
        with self._lock:
            self._routes.clear()
            self._sweep_at = _MIN_SWEEP

    def after_fork(self) -> None:
        """Start afresh in a forked child: locks held by other threads at fork time would
        stay locked there, and the parent's waiters and connections mean nothing."""
        self._lock = threading.Lock()
        self._routes = {}
        self._backends = {}
        self._sweep_at = _MIN_SWEEP


REGISTRY: Final = LimiterRegistry()
"""The limiters of this process, shared by every client."""

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=REGISTRY.after_fork)
