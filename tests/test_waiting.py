"""``wait_event``: a timed wait that never loses a cancellation of the waiting task.

``asyncio.wait_for`` on Python 3.10/3.11 returns the result when the waiting task is
cancelled in the turn where the awaited thing completes (CPython gh-86296): the task runs on
as if it had not been cancelled. The SDK's retry pause and the fleet's local wait used it.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from codegen_async._waiting import cancellable, finish_anyway, wait_event


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


async def test_cancellable_returns_what_the_call_returns_or_raises() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def fail() -> None:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    assert await cancellable(answer()) == 42
    with pytest.raises(ConnectionError):
        await cancellable(fail())


async def test_cancellable_gives_up_at_its_time_limit_and_cancels_the_call() -> None:
    started = asyncio.Event()

    async def stalled() -> None:
        started.set()
        await asyncio.sleep(60)

    call = asyncio.ensure_future(stalled())
    with pytest.raises(asyncio.TimeoutError):
        await cancellable(call, 0.01)
    await asyncio.sleep(0)
    assert call.cancelled()


@pytest.mark.parametrize("turns", range(6))
async def test_cancellable_delivers_a_cancellation_the_call_would_lose(turns: int) -> None:
    """The call swallows its own cancellation (as redis-py's ``wait_for`` does on 3.10/3.11)
    and returns; the caller, cancelled ``turns`` loop turns after the start, still ends
    cancelled whenever ``cancel()`` says it took."""

    async def losing() -> str:
        for _ in range(3):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0)
        return "done"

    async def caller() -> str:
        return await cancellable(losing())

    task = asyncio.ensure_future(caller())
    for _ in range(turns):
        await asyncio.sleep(0)
    if task.cancel():
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        assert await task == "done"


async def test_finish_anyway_raises_a_cancellation_at_once_and_finishes_the_work() -> None:
    steps: list[str] = []

    async def close() -> None:
        await asyncio.sleep(0.05)
        steps.append("closed")

    task = asyncio.ensure_future(finish_anyway(close(), "codegen-async test close"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == []  # the caller left at once
    [work] = [t for t in asyncio.all_tasks() if t.get_name() == "codegen-async test close"]
    await work
    assert steps == ["closed"]
