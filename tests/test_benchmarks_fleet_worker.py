"""The fleet benchmark's worker ends when its waits do, whatever its Redis client does.

CI, 2026-11-29: a worker never exited and the quick benchmark failed after 180 s. Its helper
that writes "I lead" to Redis was stopped by cancelling it; redis-py's ``asyncio.wait_for``
around a send (Python 3.10/3.11) lost the cancellation, and the helper looped for good. It is
stopped by an event now; here its Redis client loses every cancellation on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest

pytest.importorskip("redis")

from benchmarks.bench_fleet import LEADER_KEY, _announce_leader


class _Watcher:
    leading = True


class _CancelLosingRedis:
    """A client whose ``set`` swallows a cancellation, as redis-py's did on 3.11."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, Any]] = []

    async def set(self, key: str, value: Any) -> None:
        with contextlib.suppress(asyncio.CancelledError):  # lost, as by wait_for on 3.11
            await asyncio.sleep(0.005)
        self.writes.append((key, value))


async def test_the_leader_announcer_ends_on_its_stop_event() -> None:
    marker = _CancelLosingRedis()
    stop = asyncio.Event()
    task = asyncio.ensure_future(_announce_leader(_Watcher(), marker, stop))
    await asyncio.sleep(0.05)
    stop.set()
    done, _ = await asyncio.wait((task,), timeout=5)
    assert task in done, "the announcer did not end after stop was set"
    assert (LEADER_KEY, os.getpid()) in marker.writes


async def test_a_follower_announces_nothing() -> None:
    marker = _CancelLosingRedis()
    watcher = _Watcher()
    watcher.leading = False
    stop = asyncio.Event()
    task = asyncio.ensure_future(_announce_leader(watcher, marker, stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert marker.writes == []
