"""Waiting with a time limit without losing a cancellation.

``asyncio.wait_for`` on Python 3.10 and 3.11 loses a cancellation of the waiting task that
arrives in the turn where the awaited thing completes (CPython gh-86296, fixed in 3.12): it
returns the result and the cancelled task runs on as if nothing happened. A task cancelled
by ``asyncio.timeout``, a ``TaskGroup`` or its owner must stop, so the SDK's own timed
waits go through :func:`wait_event`, built on ``asyncio.wait``, which always delivers it.
"""

from __future__ import annotations

import asyncio

__all__ = ["wait_event"]


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
