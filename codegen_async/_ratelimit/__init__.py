"""Client-side rate limiting that keeps to the API's documented per-route quotas.

One module per role, each importing only the ones above it in this list:

- ``quotas``: :class:`RateLimits`, the configuration (quotas, mode, margin).
- ``limiter``: the :class:`Limiter` protocol the transport uses, :class:`LimiterStats`,
  and :class:`QuotaWaitExceeded` (no slot before the caller's deadline).
- ``line``: the first-come line of one route, the one wait-turn loop every limiter kind
  uses, across threads and event loops.
- ``window``: the sliding-window log of a route (:class:`RouteWindow`) and the default
  ``"window"`` limiter: a burst of N, then at most N in any window.
- ``smooth``: the ``"smooth"`` limiter and its pacer (:class:`Metronome`): one request every
  ``(window + margin) / N``.
- ``redis``: the same limiter kept in Redis, shared by processes and hosts.
- ``registry``: the process-wide :data:`REGISTRY` (one quota per token and route) and the
  process hooks.

A 429 closes the route for every caller until ``Retry-After`` (or one window) has passed:
the transport calls :meth:`Limiter.penalize`, then retries.
"""

from __future__ import annotations

from .limiter import Limiter, LimiterStats, QuotaWaitExceeded
from .quotas import DEFAULT_MARGIN, DEFAULT_MAX_HOLD, MODES, Mode, RateLimits
from .registry import REGISTRY, LimiterRegistry, credential_fingerprint, parse_backend
from .smooth import Metronome, SmoothLimiter
from .window import RouteWindow, SlidingWindowLimiter

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_MAX_HOLD",
    "MODES",
    "REGISTRY",
    "Limiter",
    "LimiterRegistry",
    "LimiterStats",
    "Metronome",
    "Mode",
    "QuotaWaitExceeded",
    "RateLimits",
    "RouteWindow",
    "SlidingWindowLimiter",
    "SmoothLimiter",
    "credential_fingerprint",
    "parse_backend",
]
