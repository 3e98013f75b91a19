"""What every limiter kind offers the transport, and the error of a wait past a deadline.

The transport calls :meth:`Limiter.acquire` before every attempt, :meth:`Limiter.release`
once the attempt is over, and :meth:`Limiter.penalize` after a 429. ``acquire`` takes an
optional *deadline* (an absolute ``time.monotonic()`` instant): a slot that cannot be had by
then raises :class:`QuotaWaitExceeded` -- at once when the wait already known cannot fit,
so that a bounded call never sleeps a wait it cannot use.
"""

from __future__ import annotations

from typing import Protocol

import attrs

__all__ = ["Limiter", "LimiterStats", "QuotaWaitExceeded"]


class QuotaWaitExceeded(Exception):
    """No slot of the route's quota can be had before the caller's deadline.

    The caller left the line without taking a slot.

    Attributes:
        retry_after: Seconds from the moment of raising until a slot is expected (a lower
            bound: other callers may take the next slots first).
        backend_silent: The shared backend (Redis) did not answer before the deadline: the
            quota may well have room, nobody knows (``retry_after`` is then 0).
    """

    def __init__(self, retry_after: float, name: str = "", *, backend_silent: bool = False) -> None:
        self.retry_after = max(retry_after, 0.0)
        self.backend_silent = backend_silent
        route = f" {name}" if name else ""
        if backend_silent:
            why = "the rate-limit backend did not answer before the deadline"
        else:
            why = f"no slot before the deadline; the next is expected in {self.retry_after:.3f}s"
        super().__init__(f"rate limit{route}: {why}")


@attrs.frozen
class LimiterStats:
    """Counters of one route's limiter, summed over every client that shares it."""

    grants: int
    waits: int
    waited_seconds: float
    penalties: int


class Limiter(Protocol):
    """What the transport needs from the limiter of one route."""

    async def acquire(self, deadline: float | None = None) -> float:
        """Wait for a slot; return the seconds spent waiting (0.0 when none were).

        Args:
            deadline: Absolute ``time.monotonic()`` instant by which the slot must be had,
                or ``None`` to wait as long as it takes.

        Raises:
            QuotaWaitExceeded: no slot before ``deadline`` (the caller took none).
        """
        ...

    def release(self) -> None:
        """The request that used a slot got its answer: the slot's window starts now."""
        ...

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` (the server answered 429)."""
        ...

    def stats(self) -> LimiterStats:
        """A snapshot of the route's counters."""
        ...
