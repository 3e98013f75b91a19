"""Waiting on runs through ``AsyncAgent``, against the time-scaled emulator.

At ``time_scale=0.01`` a 30-second quota window lasts 0.3 s and a run of 5 to 30 seconds
finishes in 0.05 to 0.3 s; the client's own quotas are scaled the same way
(``emu.client()``), so no test waits long.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import codegen_sync
from codegen_async import AsyncAgent, RunStatus
from codegen_async.emulator import STATUS_WORDS, Emulator
from codegen_async.errors import (
    BadRequestError,
    NotFoundError,
    RunWaitError,
    WaitTimeoutError,
)
from codegen_async.models import AgentRun

SCALE = 0.01
LONG = (10_000.0, 10_000.0)  # runs that never finish on their own within a test


@pytest.fixture(params=[{}])
async def emu(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """The emulator; ``@stuck_runs`` makes runs last until a test finishes them."""
    options: dict[str, Any] = {"time_scale": SCALE, "failure_rate": 0.0, "seed": 3}
    options.update(request.param)
    async with Emulator(**options) as emulator:
        yield emulator


stuck_runs = pytest.mark.parametrize("emu", [{"run_duration": LONG}], indirect=True, ids=["stuck"])


@pytest.fixture
async def agent(emu: Emulator) -> AsyncIterator[AsyncAgent]:
    async with emu.client() as client:
        yield client


def seed_runs(emu: Emulator, count: int) -> list[int]:
    """Start ``count`` runs of the token's user at once, as if ``run()`` had been called."""
    now = time.time()
    return [
        emu.state.create_run(
            org_id=emu.org_id,
            user_id=emu.user_id,
            kind="run",
            operation="run",
            source_type="API",
            prompt=f"ticket {i}",
            now=now,
        ).id
        for i in range(count)
    ]


def delete_run(emu: Emulator, run_id: int) -> None:
    """Make a run disappear from the emulated service (get_run answers 404 after this)."""
    run = emu.state.runs.pop(run_id)
    emu.state.org_runs[run.org_id].remove(run)


def finish_soon(emu: Emulator, run_id: int, status: str, delay: float = 0.05) -> None:
    asyncio.get_running_loop().call_later(delay, emu.finish_run, run_id, status)


def no_429(emu: Emulator) -> None:
    stats = emu.stats()
    assert stats["rate_limited"] == 0
    assert "429" not in stats["responses"]


pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


# --- one run ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["api", "docs"])
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
async def test_wait_for_run_every_terminal_status_both_spellings(style: str, status: str) -> None:
    async with (
        Emulator(time_scale=SCALE, status_style=style, run_duration=LONG) as emu,  # type: ignore[arg-type]
        emu.client() as agent,
    ):
        started = await agent.run("Fix the flaky test")
        assert started.status == "running"
        assert started.status.raw == STATUS_WORDS[style]["running"]
        finish_soon(emu, started.id, status)
        run = await agent.wait_for_run(started.id)
        assert run.id == started.id
        assert run.status == status
        assert run.status.raw == STATUS_WORDS[style][status]
        assert run.is_terminal
        no_429(emu)


@stuck_runs
async def test_wait_for_run_times_out_with_the_last_status(
    emu: Emulator, agent: AsyncAgent
) -> None:
    started = await agent.run("Never finishes")
    with pytest.raises(WaitTimeoutError) as info:
        await agent.wait_for_run(started.id, timeout=0.2)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert error.agent_run_id == started.id
    assert error.last_status == "running"
    assert isinstance(error.last_status, RunStatus)
    assert error.last_status.raw == "ACTIVE"
    assert not agent._poller().running


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 0.0])
@pytest.mark.parametrize("argument", ["poll_interval", "timeout"])
async def test_non_finite_poll_interval_and_timeout_are_refused(
    emu: Emulator, agent: AsyncAgent, argument: str, value: float
) -> None:
    # poll_interval=inf used to be accepted and then never polled again: a wait forever.
    started = await agent.run("Fix the flaky test")
    requests = emu.stats()["requests"]
    kwargs: dict[str, Any] = {argument: value}
    with pytest.raises(ValueError, match=argument):  # bounded: it used to wait forever
        await asyncio.wait_for(agent.wait_for_run(started.id, **kwargs), 10)
    with pytest.raises(ValueError, match=argument):
        await asyncio.wait_for(agent.wait_for_runs([started.id], **kwargs), 10)
    with pytest.raises(ValueError, match=argument):
        agent.as_completed([started.id], **kwargs)
    with pytest.raises(ValueError, match=argument):
        agent.watch_run(started.id, **kwargs)
    with pytest.raises(ValueError, match=argument):
        await asyncio.wait_for(agent.run_and_wait("Fix it", **kwargs), 10)
    assert emu.stats()["requests"] == requests  # refused before any request
    with codegen_sync.Agent(**emu.client_kwargs()) as blocking, pytest.raises(ValueError):
        blocking.wait_for_run(started.id, **kwargs)


@stuck_runs
async def test_cancelled_wait_leaves_no_task_and_stops_polling(
    emu: Emulator, agent: AsyncAgent
) -> None:
    started = await agent.run("Never finishes")
    before = asyncio.all_tasks()
    waiter = asyncio.ensure_future(agent.wait_for_run(started.id))
    get_route = "GET /v1/organizations/{org_id}/agent/run/{agent_run_id}"
    while emu.stats()["requests"][get_route] < 3:
        await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert asyncio.all_tasks() == before
    assert not agent._poller().running
    polled = emu.stats()["requests"][get_route]
    await asyncio.sleep(0.1)
    assert emu.stats()["requests"][get_route] == polled


@stuck_runs
async def test_run_disappearing_mid_wait_is_not_found(emu: Emulator, agent: AsyncAgent) -> None:
    [run_id] = seed_runs(emu, 1)
    asyncio.get_running_loop().call_later(0.05, delete_run, emu, run_id)
    with pytest.raises(NotFoundError):
        await agent.wait_for_run(run_id)
    with pytest.raises(NotFoundError):
        await agent.wait_for_run(run_id)


@stuck_runs
async def test_watch_run_yields_status_changes_in_order(emu: Emulator, agent: AsyncAgent) -> None:
    started = await agent.run("Ask me something")
    seen: list[str] = []
    async for run in agent.watch_run(started.id):
        seen.append(str(run.status))
        if run.status == "running":
            finish_soon(emu, run.id, "paused")
        elif run.status == "paused":
            finish_soon(emu, run.id, "COMPLETE")
    assert seen == ["running", "paused", "completed"]


# --- many runs ------------------------------------------------------------------------------


@stuck_runs
async def test_404_mid_wait_ends_only_that_run(emu: Emulator, agent: AsyncAgent) -> None:
    ids = seed_runs(emu, 30)
    gone = ids[7]
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, delete_run, emu, gone)
    for i, run_id in enumerate(ids):
        if run_id != gone:
            loop.call_later(0.1 + i * 0.005, emu.finish_run, run_id, "completed")
    with pytest.raises(RunWaitError) as info:
        await agent.wait_for_runs(ids)
    error = info.value
    assert list(error.errors) == [gone]
    assert isinstance(error.errors[gone], NotFoundError)
    assert list(error.runs) == [i for i in ids if i != gone]
    assert all(run.status == "completed" for run in error.runs.values())


async def test_a_thousand_runs_as_completed_without_a_429(emu: Emulator, agent: AsyncAgent) -> None:
    ids = seed_runs(emu, 1000)
    emu.reset_stats()
    finished: list[AgentRun] = []
    async for run in agent.as_completed(ids):
        assert emu.run_finished_at(run.id) is not None  # never yielded before it finished
        finished.append(run)
    assert sorted(r.id for r in finished) == sorted(ids)
    assert all(r.is_terminal for r in finished)
    no_429(emu)
    requests = emu.stats()["requests"]
    spent = sum(requests.values())
    # A single poll of every run with get_run would take 1,000 requests.
    assert spent < 1000
    assert requests["GET /v1/organizations/{org_id}/agent/runs"] > 0
    assert requests["GET /v1/users/me"] == 1


async def test_the_callers_own_calls_keep_their_share(emu: Emulator, agent: AsyncAgent) -> None:
    ids = seed_runs(emu, 300)
    emu.reset_stats()

    async def my_other_work() -> int:
        done = 0
        for _ in range(60):
            await agent.get_run(ids[0])
            await agent.list_runs(limit=5)
            done += 1
        return done

    waited, done = await asyncio.gather(agent.wait_for_runs(ids), my_other_work())
    assert len(waited) == 300
    assert done == 60
    no_429(emu)


async def test_on_update_and_concurrent_waits(emu: Emulator, agent: AsyncAgent) -> None:
    ids = seed_runs(emu, 60)
    updates: list[tuple[int, str]] = []

    def on_update(run: AgentRun) -> None:
        updates.append((run.id, str(run.status)))

    first, second, one = await asyncio.gather(
        agent.wait_for_runs(ids[:40], on_update=on_update),
        agent.wait_for_runs(ids[20:]),
        agent.wait_for_run(ids[30]),
    )
    assert list(first) == ids[:40]
    assert list(second) == ids[20:]
    assert one.id == ids[30] and one.is_terminal
    assert first[ids[30]].status == one.status
    for run_id in ids[:40]:
        statuses = [status for rid, status in updates if rid == run_id]
        assert statuses[-1] == "completed"
        assert statuses.count("completed") == 1
    assert {rid for rid, _ in updates} == set(ids[:40])
    no_429(emu)


async def test_wait_for_runs_progress_bar(
    emu: Emulator, agent: AsyncAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_runs(emu, 25)
    runs = await agent.wait_for_runs(ids, progress=True)
    assert len(runs) == 25
    assert "25/25" in capsys.readouterr().err


# --- the documentation's workflows ----------------------------------------------------------


async def test_run_and_wait(emu: Emulator, agent: AsyncAgent) -> None:
    run = await agent.run_and_wait("Fix the flaky test", metadata={"ticket": "ENG-1"})
    assert run.status == "completed"
    assert run.metadata == {"ticket": "ENG-1"}
    assert run.result


async def test_analyze_sandbox_logs_and_wait(emu: Emulator, agent: AsyncAgent) -> None:
    run = await agent.analyze_sandbox_logs_and_wait(1)
    assert run.status == "completed"
    assert run.result
    with pytest.raises(BadRequestError):
        await agent.analyze_sandbox_logs_and_wait(2)


async def test_generate_setup_commands_and_wait(emu: Emulator, agent: AsyncAgent) -> None:
    repo = (await agent.get_repositories()).items[0]
    run = await agent.generate_setup_commands_and_wait(repo.id, "Node 20 and pnpm")
    assert run.status == "completed"
    assert run.result


@stuck_runs
async def test_closing_the_client_ends_waits(emu: Emulator) -> None:
    agent = emu.client()
    [run_id] = seed_runs(emu, 1)
    waiter = asyncio.ensure_future(agent.wait_for_run(run_id))
    await asyncio.sleep(0.05)
    await agent.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await waiter
