"""Retry decisions as small pure functions, kept apart from the I/O loop that uses them.

The transport's loop asks one question after a failed attempt, :func:`may_retry`, with
what became of the attempt: an HTTP status, or :data:`NOT_SENT` (no connection was made,
so the server cannot have acted) or :data:`NO_ANSWER` (sent, but no complete answer: the
server may have acted). How long to wait is :func:`backoff_delay`'s answer, and a server's
hint is read by :func:`parse_retry_after`. Nothing here does I/O or keeps state.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = [
    "NOT_SENT",
    "NO_ANSWER",
    "RETRYABLE_STATUSES",
    "backoff_delay",
    "may_retry",
    "parse_retry_after",
]

RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
BASE_DELAY: Final = 0.5
MAX_DELAY: Final = 8.0
MAX_RETRY_AFTER: Final = 300.0

# What became of an attempt that got no HTTP status (statuses are 100..599).
NOT_SENT: Final = -1
"""No connection was made: the server never saw the request."""
NO_ANSWER: Final = 0
"""The request may have been sent, but no complete answer came (timeout, reset)."""


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


def may_retry(outcome: int, *, idempotent: bool, attempt: int, max_retries: int) -> bool:
    """Whether a failed attempt may be tried again: the one retry rule of the client.

    Args:
        outcome: The answer's HTTP status, or :data:`NOT_SENT` / :data:`NO_ANSWER`.
        idempotent: Whether repeating the operation cannot do anything twice.
        attempt: Retries made so far (0 after the first attempt).
        max_retries: Retries allowed.

    A request the server cannot have acted on (never sent, or refused with 429 before
    acting) may be repeated whatever it does; any other failure may come after the server
    acted, so only idempotent operations are repeated (after no answer, 408, 5xx).
    """
    if attempt >= max_retries:
        return False
    if outcome == NOT_SENT or outcome == 429:
        return True
    return idempotent and (outcome == NO_ANSWER or outcome in RETRYABLE_STATUSES)
