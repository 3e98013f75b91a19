"""Waiting without losing a cancellation.

``asyncio.wait_for`` on Python 3.10 and 3.11 loses a cancellation of the waiting task that
arrives in the turn where the awaited thing completes (CPython gh-86296, fixed in 3.12): it
returns the result and the cancelled task runs on as if nothing happened. A task cancelled
by ``asyncio.timeout``, a ``TaskGroup`` or its owner must stop, so the SDK's own timed
waits go through :func:`wait_event`, built on ``asyncio.wait``, which always delivers it.

redis-py wraps every send (and its connection handshakes) in ``asyncio.wait_for`` when a
socket timeout is set, so a task that awaits a redis-py call loses its cancellation the
same way. The SDK's tasks that must stop when cancelled (the fleet's serving loop and lease
heartbeat) await Redis through :func:`cancellable`: the call runs in a task of its own,
awaited with ``asyncio.wait``, so the caller's cancellation always takes effect.

Closing is the other way round: a close cut short by a cancellation (``aclose()`` under a
time limit while Redis stalls) left connections open and calls to Redis running. Closes go
through :func:`finish_anyway`: the caller leaves at once, the close runs to its end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

__all__ = ["cancellable", "drop_outcome", "finish_anyway", "wait_event"]

T = TypeVar("T")

# Closes under way whose caller was cancelled: the loop itself keeps only weak references.
_FINISHING: set[asyncio.Task[Any]] = set()


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds have passed; whether it is set.

    A cancellation of the calling task is always raised (never lost, as with
    ``asyncio.wait_for`` on 3.10/3.11), and the inner wait ends with it.
    """
    if event.is_set():
        return True
    waiter = asyncio.get_running_loop().create_task(event.wait())
    try:
        await asyncio.wait((waiter,), timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()


async def cancellable(call: Awaitable[T], timeout: float | None = None) -> T:
    """Await ``call`` (a redis-py call, say) so that a cancellation of the caller is never lost.

    ``call`` runs in a task of its own, awaited with ``asyncio.wait``: a cancellation of the
    calling task is always raised here, even when ``call`` itself would have lost it. The
    call is then cancelled too, and not waited for (it may still finish its command; what
    it returns or raises is dropped).

    Raises:
        TimeoutError: ``timeout`` seconds passed first (the call is cancelled the same way).
    """
    inner = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait((inner,), timeout=timeout)
    except BaseException:
        _abandon(inner)
        raise
    if not done:
        _abandon(inner)
        raise asyncio.TimeoutError(f"no answer within {timeout}s")
    return inner.result()


def _abandon(inner: asyncio.Future[Any]) -> None:
    inner.cancel()
    inner.add_done_callback(drop_outcome)


def drop_outcome(future: asyncio.Future[Any]) -> None:
    """Mark a finished future's outcome as seen: its result or error no longer matters
    (no "exception was never retrieved" at exit). A done callback, or called on done ones."""
    if not future.cancelled():
        future.exception()


async def finish_anyway(work: Coroutine[Any, Any, None], name: str) -> None:
    """Run ``work`` (a close) to its end, even if the calling task is cancelled meanwhile.

    The cancellation is raised in the caller at once; ``work`` goes on in a task named
    ``name`` (bounded like any close), referenced until it ends.
    """
    task = asyncio.get_running_loop().create_task(work, name=name)
    _FINISHING.add(task)
    task.add_done_callback(_FINISHING.discard)
    await asyncio.shield(task)
