"""A user's script, type-checked by ``.ci/run`` with ``mypy --strict`` against the installed wheel.

It never runs. It only has to type-check: if the wheel lost ``py.typed`` or the sync client's
stub, mypy reports the packages as untyped (or the calls as ``Any``) and the CI step fails.
"""

from __future__ import annotations

import asyncio

from typing_extensions import assert_type

import codegen_async
import codegen_sync
from codegen_async import AgentRun, AsyncAgent, CodegenError, Page, RateLimits, User
from codegen_sync import Agent


async def fan_out(prompts: list[str]) -> dict[int, AgentRun]:
    async with AsyncAgent("token", 1, rate_limits=RateLimits.documented(scale=0.5)) as agent:
        started = await asyncio.gather(*(agent.run(p, repo_id=1) for p in prompts))
        assert_type(started, list[AgentRun])
        done = await agent.wait_for_runs([run.id for run in started], timeout=60)
        users = await agent.get_users(limit=10)
        assert_type(users, Page[User])
        return dict(done)


def blocking() -> str:
    with Agent("token", 1) as agent:
        run = agent.get_run(1)
        assert_type(run, AgentRun)
        try:
            return str(agent.get_current_user().id)
        except CodegenError as exc:
            return type(exc).__name__


VERSIONS: tuple[str, ...] = (codegen_async.__version__, codegen_sync.__name__)
