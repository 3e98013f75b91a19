"""The quotas a client keeps to: :class:`RateLimits`, its modes and defaults.

Pure configuration, no state: the registry reads it to build limiters, the emulator and the
CLI read it to show what the client keeps to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Literal

import attrs

from .._endpoints import ENDPOINTS, STANDARD, Endpoint, Quota

__all__ = ["DEFAULT_MARGIN", "DEFAULT_MAX_HOLD", "MODES", "Mode", "RateLimits", "check_quota"]

Mode = Literal["window", "smooth"]
MODES: Final = ("window", "smooth")
DEFAULT_MARGIN: Final = 0.05
DEFAULT_MAX_HOLD: Final = 120.0


def check_quota(quota: Quota, *, what: str = "a quota") -> None:
    """Refuse a quota no limiter can keep.

    Raises:
        ValueError: ``limit`` below 1, or ``window`` not a positive finite number.
    """
    if quota.limit < 1 or not 0 < quota.window < math.inf:
        raise ValueError(f"{what} needs limit >= 1 and window > 0, got {quota}")


def _check_mode(_instance: object, _attribute: object, value: object) -> None:
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {value!r}")


def _check_non_negative(_instance: object, attribute: Any, value: float) -> None:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


@attrs.frozen
class RateLimits:
    """Per-operation quotas the client keeps to.

    ``RateLimits.documented()`` is the default: the documented quota of every operation.
    Override single entries with :meth:`replace`, or turn limiting off with
    :meth:`disabled`.

    Attributes:
        quotas: Operation name (as in ``ENDPOINTS``) to its quota; ``None`` or a missing
            name means no client-side limit for that operation.
        mode: ``"window"`` (default) lets a burst of N go at once, then keeps at most N in
            any window; ``"smooth"`` spaces requests evenly, one every (T + margin) / N.
        margin: Seconds added to every window, for server clocks that round and for
            network jitter.
        enabled: ``False`` turns client-side limiting off (the server's 429s are still
            waited out and retried).
        max_hold: Seconds after which a slot whose request never reported back is
            reclaimed anyway (a crashed process, in Redis mode).
        default: The quota of a route the SDK does not know (``agent.request(...)``
            without ``quota=``); ``None``: no client-side limit. ``documented()`` sets the
            standard one the documentation gives ordinary endpoints (60 per 30 s, scaled).
    """

    quotas: Mapping[str, Quota | None] = attrs.field(factory=dict)
    mode: Mode = attrs.field(default="window", validator=_check_mode)
    margin: float = attrs.field(default=DEFAULT_MARGIN, validator=_check_non_negative)
    enabled: bool = True
    max_hold: float = attrs.field(default=DEFAULT_MAX_HOLD, validator=_check_non_negative)
    default: Quota | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.default is not None:
            check_quota(self.default, what="default: a quota")

    @classmethod
    def documented(
        cls, scale: float = 1.0, *, mode: Mode = "window", margin: float | None = None
    ) -> RateLimits:
        """The documented quotas with every window multiplied by ``scale``.

        Args:
            scale: Factor for every window (an emulator run with ``--time-scale 0.01``
                wants ``scale=0.01``).
            mode: ``"window"`` or ``"smooth"``.
            margin: Seconds added to every window; default 50 ms times ``scale`` (at most
                50 ms).

        Raises:
            ValueError: ``scale`` is not positive.
        """
        if not scale > 0 or math.isinf(scale):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        return cls(
            {name: e.quota.scaled(scale) for name, e in ENDPOINTS.items()},
            mode=mode,
            margin=DEFAULT_MARGIN * min(scale, 1.0) if margin is None else margin,
            max_hold=DEFAULT_MAX_HOLD * max(scale, 1.0),
            default=STANDARD.scaled(scale),
        )

    @classmethod
    def disabled(cls) -> RateLimits:
        """No client-side limiting at all (the server's 429s are still retried)."""
        return cls({}, enabled=False)

    def replace(self, **quotas: Quota | None) -> RateLimits:
        """A copy with some operations' quotas replaced (``None`` leaves one unlimited).

        ``default=`` replaces the quota of routes the SDK does not know (``request()``).

        Raises:
            ValueError: a name is not an operation of the API.
        """
        changes: dict[str, Any] = {}
        if "default" in quotas:  # no operation has that name
            changes["default"] = quotas.pop("default")
        unknown = set(quotas) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown operations: {', '.join(sorted(unknown))}")
        for name, quota in quotas.items():
            if quota is not None:
                check_quota(quota, what=f"{name}: a quota")
        return attrs.evolve(self, quotas={**self.quotas, **quotas}, **changes)

    def for_endpoint(self, endpoint: Endpoint) -> Quota | None:
        """The quota to keep for one operation, or ``None`` for no limit."""
        if not self.enabled:
            return None
        return self.quotas.get(endpoint.name)
