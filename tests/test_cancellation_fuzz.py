"""Cancelling every kind of call at many loop turns: an accepted cancellation always ends
the call with CancelledError, and nothing of the SDK runs on afterwards.

A bounded version of the break-it campaign of 2026-11-29 (thousands of cancels on 3.10,
3.11 and 3.12, in memory and through Redis with fleet polling): each case here cancels a
few hundred calls, 0-39 loop turns (``sleep(0)``) or a few milliseconds after they start.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from codegen_async import AsyncAgent
from codegen_async.emulator import Emulator
from tests.test_ratelimit_redis import REDIS_SERVER, _start_redis

CALLS = 200


async def _drain(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


def _calls(agent: AsyncAgent, emu: Emulator, ids: list[int]) -> list[Callable[[], Awaitable[Any]]]:
    org = emu.org_id
    return [
        lambda: agent.get_run(ids[0]),
        lambda: agent.list_runs(limit=5),
        lambda: _drain(agent.iter_runs(page_size=2)),
        lambda: agent.with_raw_response.get_run(ids[0]),
        lambda: agent.request("GET", f"/v1/organizations/{org}/agent/run/{ids[0]}"),
        lambda: agent.run("x"),
        lambda: agent.wait_for_run(ids[1]),
        lambda: _drain(agent.as_completed(ids)),
        lambda: agent.wait_for_runs(ids),
    ]


async def _campaign(emu: Emulator, agent: AsyncAgent, seed: int) -> None:
    rng = random.Random(seed)
    ids = [(await agent.run(f"seed {i}")).id for i in range(3)]
    calls = _calls(agent, emu, ids)
    lost = []
    for i in range(CALLS):
        task = asyncio.ensure_future(calls[i % len(calls)]())
        if rng.random() < 0.8:
            for _ in range(int(rng.random() ** 2 * 40)):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(rng.random() * 0.005)
        accepted = task.cancel()
        try:
            await task
            outcome = "result"
        except asyncio.CancelledError:
            outcome = "cancelled"
        except Exception as exc:  # recorded: only a cancellation may end an accepted cancel
            outcome = type(exc).__name__
        if accepted and outcome != "cancelled":
            lost.append((i % len(calls), outcome))
    assert not lost, f"accepted cancellations that did not end the call: {lost}"
    await agent.aclose()
    await asyncio.sleep(0.05)
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and "codegen" in repr(t).lower()]
    assert not left, left


async def test_cancelled_calls_end_cancelled_in_memory() -> None:
    async with Emulator(time_scale=0.01, run_duration=(0.05, 0.3), seed=5) as emu:
        await _campaign(emu, emu.client(), seed=5)


@pytest.mark.redis
@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
async def test_cancelled_calls_end_cancelled_through_redis_and_the_fleet(
    tmp_path: Any,
) -> None:
    proc, port = _start_redis(tmp_path)
    try:
        async with Emulator(time_scale=0.01, run_duration=(0.05, 0.3), seed=6) as emu:
            url = f"redis://127.0.0.1:{port}/0"
            await _campaign(emu, emu.client(rate_limit_backend=url), seed=6)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
