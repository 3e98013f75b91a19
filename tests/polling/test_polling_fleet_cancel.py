"""Fleet run watching: a cancellation of its tasks is never lost inside redis-py.

redis-py wraps every send in ``asyncio.wait_for`` when a socket timeout is set, and on
Python 3.10/3.11 ``wait_for`` loses a cancellation of the waiting task that arrives as the
send completes (CPython gh-86296): the task runs on as if it had not been cancelled. These
tests make every redis-py call lose its caller's cancellation, deterministically on any
Python, and check that the fleet's tasks stop anyway. Against a real redis-server and the
emulator, with the fixtures of ``test_polling_fleet.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from redis.asyncio import Redis  # noqa: E402
from redis.asyncio.client import Pipeline  # noqa: E402

from codegen_async._polling import FleetSettings  # noqa: E402
from codegen_async._polling._fleet import _ACQUIRE_LUA  # noqa: E402
from codegen_async.emulator import Emulator  # noqa: E402
from tests.polling import test_polling_fleet as base  # noqa: E402
from tests.polling.test_polling_fleet import seed_runs, until, watcher  # noqa: E402
from tests.test_ratelimit_redis import REDIS_SERVER  # noqa: E402

redis_server = base.redis_server
redis_url = base.redis_url
emu = base.emu

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


class CancelLoss:
    """Every redis-py command (and pipeline) loses its caller's cancellation, as
    ``asyncio.wait_for`` does on 3.10/3.11 when it arrives as a send completes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commands: list[str] = []
        self.lost = 0
        self.finished = 0  # calls that lost their cancellation and then ended
        self.cancel_at: tuple[int, asyncio.Task[Any]] | None = None  # (nth call, task)
        # (which call, task): cancel the task when a call's arguments match
        self.cancel_on: tuple[Callable[[tuple[Any, ...]], bool], asyncio.Task[Any]] | None = None
        for cls, name in ((Redis, "execute_command"), (Pipeline, "execute")):
            monkeypatch.setattr(cls, name, self._losing(getattr(cls, name)))

    def _losing(self, real: Any) -> Any:
        loss = self

        async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            command = str(args[0]) if args else "PIPELINE"
            if command not in ("EVALSHA", "SCRIPT LOAD"):  # the rate limiter's: not counted
                loss.commands.append(command)
            if loss.cancel_at is not None and len(loss.commands) == loss.cancel_at[0]:
                loss.cancel_at[1].cancel()  # arrives while this call is in flight
            if loss.cancel_on is not None and loss.cancel_on[0](args):
                loss.cancel_on[1].cancel()
            inner = asyncio.ensure_future(real(self, *args, **kwargs))
            try:
                return await asyncio.shield(inner)
            except asyncio.CancelledError:
                loss.lost += 1
                try:
                    return await inner  # the cancellation is lost: the call returns as usual
                finally:
                    loss.finished += 1

        return call


@pytest.fixture
def cancel_loss(monkeypatch: pytest.MonkeyPatch) -> CancelLoss:
    return CancelLoss(monkeypatch)


def fleet_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("codegen-async fleet")]


@pytest.mark.parametrize("calls", [1, 2, 3, 4])
async def test_a_wait_cancelled_inside_a_redis_call_leaves_no_leader_behind(
    emu: Emulator, redis_url: str, cancel_loss: CancelLoss, calls: int
) -> None:
    # The serving task, cancelled (its wait was) inside one of its first Redis calls, ran
    # on: it took the lease and started a heartbeat that renewed it for good, with nobody
    # polling (every other process's waits hung), and that outlived aclose().
    [run_id] = seed_runs(emu, 1)
    agent = emu.client(rate_limit_backend=redis_url)
    try:
        fleet = watcher(agent)
        await agent.get_run(run_id)  # its rate limit holds the client's Redis connections
        cancel_loss.commands.clear()
        wait = asyncio.ensure_future(agent.wait_for_run(run_id))
        cancel_loss.cancel_at = (calls, wait)
        with pytest.raises(asyncio.CancelledError):
            await wait
        await until(lambda: cancel_loss.lost > 0, 5.0)  # it arrived inside a Redis call
        await asyncio.sleep(0.2)  # time enough for a task that ran on to take the lease
        assert not fleet.leading, "the cancelled serving task took the lease"
        assert not [t for t in fleet_tasks() if not t.done() and "lease" in t.get_name()]
    finally:
        await agent.aclose()
    await until(lambda: not [t for t in fleet_tasks() if not t.done()], 5.0)


async def test_a_lease_taken_as_the_wait_was_cancelled_is_given_back(
    emu: Emulator, redis_url: str, cancel_loss: CancelLoss, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The serving task, cancelled while Redis ran its script taking the lease (sent, not
    # yet answered: on any Python), did not know it led, so the lease was left to lapse:
    # up to 5 s in which no process polled the fleet's runs.
    monkeypatch.setattr(FleetSettings, "for_window", classmethod(lambda cls, _: cls(5.0)))
    [run_id] = seed_runs(emu, 1)
    agent = emu.client(rate_limit_backend=redis_url)
    try:
        fleet = watcher(agent)
        await agent.get_run(run_id)
        wait = asyncio.ensure_future(agent.wait_for_run(run_id))
        cancel_loss.cancel_on = (lambda args: _ACQUIRE_LUA in args, wait)
        with pytest.raises(asyncio.CancelledError):
            await wait
        await until(lambda: cancel_loss.finished > 0, 5.0)  # the script ran: lease taken
        await until(lambda: not [t for t in fleet_tasks() if not t.done()], 5.0)
        client = redis.Redis.from_url(redis_url)
        try:
            assert not client.exists(fleet._lease_key), "the lease was left to lapse"
        finally:
            client.close()
    finally:
        await agent.aclose()
