"""Retry decisions as small pure functions, kept apart from the I/O loop that uses them."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = [
    "RETRYABLE_STATUSES",
    "backoff_delay",
    "parse_retry_after",
    "should_retry_status",
]

RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
BASE_DELAY: Final = 0.5
MAX_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 300.0


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP-date).

    Returns ``None`` when absent or unreadable; never negative; capped at five minutes so a
    bogus header cannot park a client for hours.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            millis = float(raw_ms)
        except ValueError:
            millis = math.nan
        if millis == millis:  # not NaN, which would compare false everywhere and sleep NaN
            return min(max(millis / 1000.0, 0.0), MAX_RETRY_AFTER)
    raw = headers.get("Retry-After") or headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = BASE_DELAY,
    cap: float = MAX_DELAY,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number ``attempt`` (0-based): exponential backoff, full jitter.

    With a server hint, wait at least that long plus a little jitter, so that clients told
    the same ``Retry-After`` do not all come back in the same instant.
    """
    r = rng or random
    ceiling = min(cap, base * (2**attempt))
    if retry_after is not None:
        return retry_after + r.uniform(0, min(ceiling, 1.0) * 0.25)
    return r.uniform(0, ceiling)


def should_retry_status(status: int, *, idempotent: bool) -> bool:
    """Whether an answer with this status may be retried.

    A 429 means the server refused before acting, so even creating calls are retried; any
    other status may come after the server acted, so only idempotent calls are retried.
    """
    if status == 429:
        return True
    return idempotent and status in RETRYABLE_STATUSES
