"""``wait_event``: a timed wait that never loses a cancellation of the waiting task.

``asyncio.wait_for`` on Python 3.10/3.11 returns the result when the waiting task is
cancelled in the turn where the awaited thing completes (CPython gh-86296): the task runs on
as if it had not been cancelled. The SDK's retry pause and the fleet's local wait used it.
"""

from __future__ import annotations

import asyncio

import pytest

from codegen_async._waiting import wait_event


async def test_a_set_event_ends_the_wait_and_says_so() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 10) is True
    assert await wait_event(event, 10) is True  # already set: no wait at all


async def test_the_time_limit_ends_the_wait_and_leaves_no_task() -> None:
    event = asyncio.Event()
    before = len(asyncio.all_tasks())
    assert await wait_event(event, 0.01) is False
    await asyncio.sleep(0)  # the inner wait's cancellation runs
    assert len(asyncio.all_tasks()) == before


@pytest.mark.parametrize("turns", range(6))
async def test_a_cancellation_as_the_event_is_set_is_never_lost(turns: int) -> None:
    """The event is set, then the waiting task is cancelled ``turns`` loop turns later:
    whenever ``cancel()`` says it took, the task ends cancelled (with ``wait_for`` on 3.11
    one of these returned True instead)."""
    event = asyncio.Event()
    task = asyncio.ensure_future(wait_event(event, 10))
    await asyncio.sleep(0)  # the task waits
    event.set()
    for _ in range(turns):
        await asyncio.sleep(0)
    if task.cancel():
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
    else:
        assert await task is True


async def test_a_cancellation_while_waiting_ends_the_inner_wait() -> None:
    event = asyncio.Event()
    task = asyncio.ensure_future(wait_event(event, 10))
    await asyncio.sleep(0)
    inner = [t for t in asyncio.all_tasks() if t is not task and "Event.wait" in repr(t)]
    assert len(inner) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert inner[0].cancelled()
