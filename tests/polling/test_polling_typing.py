"""What a strict type checker sees of the waits (issue 17 #5): a finished run's status is set."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import codegen_async
from codegen_async.models import AgentRun, FinishedRun, RunStatus

mypy_api = pytest.importorskip("mypy.api")

USER_CODE = """
from codegen_async import AsyncAgent
from codegen_sync import Agent


async def run_async(agent: AsyncAgent) -> list[str]:
    run = await agent.wait_for_run(1)
    started = await agent.run_and_wait("Fix it")
    many = await agent.wait_for_runs([1, 2])
    raws = [run.status.raw, started.status.raw, many[1].status.raw]
    async for done in agent.as_completed([1, 2]):
        raws.append(done.status.raw)
    return raws


def run_blocking(agent: Agent) -> list[str]:
    run = agent.wait_for_run(1)
    logs = agent.analyze_sandbox_logs_and_wait(1)
    setup = agent.generate_setup_commands_and_wait(1)
    raws = [run.status.raw, logs.status.raw, setup.status.raw]
    raws += [done.status.raw for done in agent.as_completed([1])]
    return raws
"""


def test_a_finished_run_needs_no_status_guard(tmp_path: Path) -> None:
    # Before: 'Item "None" of "RunStatus | None" has no attribute "raw"' on every line.
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(USER_CODE))
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(script)]
    )
    assert status == 0, out + err


def test_finished_run_is_agent_run_at_run_time() -> None:
    assert FinishedRun is AgentRun
    assert codegen_async.FinishedRun is AgentRun
    run = AgentRun(id=1, organization_id=2, status=RunStatus("COMPLETE"))
    assert isinstance(run, FinishedRun)
    assert codegen_async._polling.is_finished(run)
    assert not codegen_async._polling.is_finished(AgentRun(id=1, organization_id=2))
