"""Every operation of the client, called once against the emulator (shared by the
reliability, secrets and leak tests).

The same table drives the asyncio client and the blocking one: each entry builds the call
from a client and the emulator's seeded world; :func:`drive_async` / :func:`drive_sync` make
it, consume iterators, and return the result or the SDK error it raised.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import attrs

from codegen_async import ENDPOINTS, AsyncAgent, CheckSuiteSettingsUpdate, CodegenError

ITERATORS = frozenset({"iter_users", "iter_runs", "iter_run_logs", "iter_organizations",
                       "iter_repositories", "watch_run", "as_completed"})  # fmt: skip


@attrs.frozen
class World:
    """Ids of the emulator's seeded world that the calls need."""

    user_id: int
    org_id: int
    repo_id: int
    run_id: int
    paused_run_id: int
    pr_id: int

    @classmethod
    def from_info(cls, info: dict[str, Any], run_id: int, paused_run_id: int) -> World:
        return cls(
            user_id=info["user_id"],
            org_id=info["org_id"],
            repo_id=info["repo_ids"][0],
            run_id=run_id,
            paused_run_id=paused_run_id,
            pr_id=info["pull_request_ids"][0],
        )


Call = Callable[[Any, World], Any]
OPERATIONS: list[tuple[str, Call]] = [
    ("get_current_user", lambda a, w: a.get_current_user()),
    ("get_user", lambda a, w: a.get_user(w.user_id)),
    ("get_users", lambda a, w: a.get_users(limit=10)),
    ("iter_users", lambda a, w: a.iter_users(page_size=10)),
    ("run", lambda a, w: a.run("Fix the flaky test", repo_id=w.repo_id, metadata={"k": "v"})),
    ("get_run", lambda a, w: a.get_run(w.run_id)),
    ("list_runs", lambda a, w: a.list_runs(limit=5)),
    ("iter_runs", lambda a, w: a.iter_runs(page_size=50)),
    ("resume_run", lambda a, w: a.resume_run(w.paused_run_id, "Go on, please")),
    ("ban_all_checks", lambda a, w: a.ban_all_checks(w.run_id)),
    ("unban_all_checks", lambda a, w: a.unban_all_checks(w.run_id)),
    ("remove_from_pr", lambda a, w: a.remove_from_pr(w.run_id)),
    ("get_run_logs", lambda a, w: a.get_run_logs(w.run_id, limit=5)),
    ("iter_run_logs", lambda a, w: a.iter_run_logs(w.run_id, page_size=20)),
    ("analyze_sandbox_logs", lambda a, w: a.analyze_sandbox_logs(1)),
    ("generate_setup_commands", lambda a, w: a.generate_setup_commands(w.repo_id, "Use uv")),
    ("generate_slack_connect_token", lambda a, w: a.generate_slack_connect_token()),
    ("get_organizations", lambda a, w: a.get_organizations()),
    ("iter_organizations", lambda a, w: a.iter_organizations(page_size=1)),
    ("get_repositories", lambda a, w: a.get_repositories(limit=3)),
    ("iter_repositories", lambda a, w: a.iter_repositories(page_size=2)),
    ("get_integrations", lambda a, w: a.get_integrations()),
    ("get_check_suite_settings", lambda a, w: a.get_check_suite_settings(w.repo_id)),
    ("update_check_suite_settings", lambda a, w: a.update_check_suite_settings(
        w.repo_id, CheckSuiteSettingsUpdate(check_retry_count=2, ignored_checks=["lint"]))),
    ("edit_pull_request", lambda a, w: a.edit_pull_request(w.repo_id, w.pr_id, "draft")),
    ("edit_pull_request_simple", lambda a, w: a.edit_pull_request_simple(w.pr_id, "open")),
    ("get_cli_rules", lambda a, w: a.get_cli_rules()),
    ("get_mcp_providers", lambda a, w: a.get_mcp_providers()),
    ("get_oauth_token_status", lambda a, w: a.get_oauth_token_status()),
    ("revoke_oauth_token", lambda a, w: a.revoke_oauth_token("github")),
    ("wait_for_run", lambda a, w: a.wait_for_run(w.run_id, timeout=30)),
    ("wait_for_runs", lambda a, w: a.wait_for_runs([w.run_id], timeout=30)),
    ("as_completed", lambda a, w: a.as_completed([w.run_id], timeout=30)),
    ("watch_run", lambda a, w: a.watch_run(w.run_id, timeout=30)),
    ("run_and_wait", lambda a, w: a.run_and_wait("Add a test", repo_id=w.repo_id, timeout=30)),
    ("analyze_sandbox_logs_and_wait",
     lambda a, w: a.analyze_sandbox_logs_and_wait(1, timeout=30)),
    ("generate_setup_commands_and_wait",
     lambda a, w: a.generate_setup_commands_and_wait(w.repo_id, timeout=30)),
]  # fmt: skip

assert set(ENDPOINTS) <= {name for name, _ in OPERATIONS}, "every operation is exercised"


async def world_of(agent: AsyncAgent, info: dict[str, Any]) -> World:
    """Find a finished run and a paused one among the emulator's seeded runs."""
    runs = (await agent.list_runs(limit=100)).items
    finished = next(r.id for r in runs if r.is_terminal)
    paused = next(r.id for r in runs if r.status == "paused")
    return World.from_info(info, finished, paused)


async def drive_async(agent: AsyncAgent, world: World) -> list[tuple[str, Any]]:
    """Make every call on an ``AsyncAgent``; return ``(name, result or SDK error)``."""
    outcomes: list[tuple[str, Any]] = []
    for name, call in OPERATIONS:
        try:
            result = call(agent, world)
            if name in ITERATORS:
                result = [item async for item in result]
            elif inspect.isawaitable(result):
                result = await result
        except CodegenError as exc:
            result = exc
        outcomes.append((name, result))
    return outcomes


def drive_sync(agent: Any, world: World) -> list[tuple[str, Any]]:
    """Make every call on a ``codegen_sync.Agent``; return ``(name, result or SDK error)``."""
    outcomes: list[tuple[str, Any]] = []
    for name, call in OPERATIONS:
        try:
            result = call(agent, world)
            if name in ITERATORS:
                result = list(result)
        except CodegenError as exc:
            result = exc
        outcomes.append((name, result))
    return outcomes
