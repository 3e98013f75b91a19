"""What each operation of the API does to the emulator's state, and what it answers.

One plain function per row of the endpoint table, keyed by the row's name in
:data:`OPERATIONS`. Each gets the state and a :class:`Call` (the authenticated user, the
validated values, the time) and returns an SDK model (or JSON-ready data for operations the
spec leaves undescribed), or raises :class:`~._errors.ApiError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

import attrs

from .._endpoints import ENDPOINTS
from ..models import (
    AgentRunWithLogs,
    AnalyzeLogsResponse,
    CliRules,
    EditPullRequestResult,
    OrganizationIntegrations,
    Page,
    SetupCommandsResponse,
    SlackConnectToken,
)
from . import _content
from ._errors import (
    NO_LOGS,
    NO_REPOS,
    PLAN_LIMIT,
    PR_NOT_FOUND,
    REPO_NOT_FOUND,
    SANDBOX_NOT_FOUND,
    USER_NOT_FOUND,
    ApiError,
)
from ._records import SLACK_TOKEN_MINUTES, TERMINAL, WEB_URL, OrgRecord, RepoRecord
from ._state import EmulatorState

__all__ = ["OPERATIONS", "Call", "Operation"]

T = TypeVar("T")


@attrs.define(slots=True)
class Call:
    """One validated request: who sent it, its typed values, and when (unix time)."""

    user_id: int
    values: dict[str, Any]
    now: float


Operation = Callable[[EmulatorState, Call], Any]


def page_of(items: Sequence[T], total: int, skip: int, limit: int) -> Page[T]:
    """A page like the service's: ``page = skip // limit + 1``, ``size = limit``."""
    return Page(
        items=list(items),
        total=total,
        page=skip // limit + 1,
        size=limit,
        pages=math.ceil(total / limit),
    )


def _org(state: EmulatorState, call: Call) -> OrgRecord:
    return state.require_member(call.values["org_id"], call.user_id)


def _check_plan(state: EmulatorState) -> None:
    limit = state.config.max_runs
    if limit is not None and state.runs_created >= limit:
        raise ApiError(402, PLAN_LIMIT)


def _repo_in(state: EmulatorState, org: OrgRecord, repo_id: int) -> RepoRecord:
    repo = state.repos.get(repo_id)
    if repo is None or repo.org_id != org.id:
        raise ApiError(404, REPO_NOT_FOUND)
    return repo


# --- users -----------------------------------------------------------------------------
def get_users(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    skip, limit = call.values["skip"], call.values["limit"]
    ids = sorted(org.members)
    items = [state.user_model(uid, org.id) for uid in ids[skip : skip + limit]]
    return page_of(items, len(ids), skip, limit)


def get_user(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    user_id = call.values["user_id"]
    if user_id not in org.members:
        raise ApiError(404, USER_NOT_FOUND)
    return state.user_model(user_id, org.id)


def get_current_user(state: EmulatorState, call: Call) -> Any:
    return state.user_model(call.user_id, None)


# --- agent runs --------------------------------------------------------------------------
def run(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    _check_plan(state)
    body = call.values["body"]
    repos = [repo for repo in state.repos_of(org.id) if not repo.archived]
    if not repos:
        raise ApiError(404, NO_REPOS)
    repo_id = body.get("repo_id")
    repo = repos[0] if repo_id is None else _repo_in(state, org, repo_id)
    sandbox_id = state.sandbox_for_repo(repo)
    metadata: dict[str, Any] | None = body.get("metadata")
    if repo_id is not None and sandbox_id is not None:
        # The docs' workflow reads the sandbox of a failed test run from its metadata.
        metadata = {"sandbox_id": sandbox_id, **(metadata or {})}
    record = state.create_run(
        org_id=org.id,
        user_id=call.user_id,
        kind="run",
        operation="run",
        source_type="API",
        prompt=body["prompt"],
        now=call.now,
        repo_id=repo.id,
        sandbox_id=sandbox_id,
        metadata=metadata,
        model=body.get("model"),
        agent_type=body.get("agent_type"),
    )
    return state.run_model(record, call.now)


def get_run(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    return state.run_model(state.get_run(org.id, call.values["agent_run_id"]), call.now)


def list_runs(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    values = call.values
    skip, limit = values["skip"], values["limit"]
    runs, total = state.runs_page(
        org.id,
        user_id=values["user_id"],
        source_type=values["source_type"],
        skip=skip,
        limit=limit,
    )
    return page_of([state.run_model(r, call.now) for r in runs], total, skip, limit)


def resume_run(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    body = call.values["body"]
    record = state.get_run(org.id, body["agent_run_id"])
    status = record.status(call.now)
    if status == "running":
        # A message to a working agent: logged, and the run carries on to its deadline.
        record.segments.append((call.now, max(record.deadline, call.now), body["prompt"]))
    else:
        duration, planned = state.plan()
        record.restart(call.now, duration, planned, body["prompt"])
    return state.run_model(record, call.now)


def _stop(record: Any, now: float) -> None:
    if record.status(now) not in TERMINAL:
        record.force("cancelled", now)


def ban_all_checks(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    record = state.get_run(org.id, call.values["body"]["agent_run_id"])
    record.banned = True
    _stop(record, call.now)
    return {
        "success": True,
        "agent_run_id": record.id,
        "message": f"All checks banned for agent run {record.id}; its agents were stopped.",
    }


def unban_all_checks(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    record = state.get_run(org.id, call.values["body"]["agent_run_id"])
    record.banned = False
    return {
        "success": True,
        "agent_run_id": record.id,
        "message": f"Checks unbanned for agent run {record.id}.",
    }


def remove_from_pr(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    record = state.get_run(org.id, call.values["body"]["agent_run_id"])
    record.removed_from_pr = True
    _stop(record, call.now)
    return {
        "success": True,
        "agent_run_id": record.id,
        "message": f"Codegen was removed from the pull request of agent run {record.id}.",
    }


def get_run_logs(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    values = call.values
    record = state.get_run(org.id, values["agent_run_id"])
    skip, limit = values["skip"], values["limit"]
    logs = _content.run_logs(state, record, call.now)
    if values["reverse"]:
        logs.reverse()
    status = record.status(call.now)
    total = len(logs)
    return AgentRunWithLogs(
        id=record.id,
        organization_id=record.org_id,
        logs=logs[skip : skip + limit],
        status=state.wire_status[status],
        created_at=record.created_iso,
        web_url=WEB_URL.format(record.id),
        result=state.run_result(record, status),
        metadata=record.metadata,
        total_logs=total,
        page=skip // limit + 1,
        size=limit,
        pages=math.ceil(total / limit),
    )


# --- sandbox and setup commands ---------------------------------------------------------
def analyze_sandbox_logs(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    sandbox_id = call.values["sandbox_id"]
    _check_plan(state)
    box = state.sandboxes.get(sandbox_id)
    if box is None or box.org_id != org.id:
        raise ApiError(404, SANDBOX_NOT_FOUND)
    if not box.logs:
        raise ApiError(400, NO_LOGS)
    record = state.create_run(
        org_id=org.id,
        user_id=call.user_id,
        kind="analysis",
        operation="analyze_sandbox_logs",
        source_type="API",
        prompt=f"Analyze the setup logs of sandbox {sandbox_id}",
        now=call.now,
        repo_id=box.repo_id,
        sandbox_id=sandbox_id,
        metadata={"sandbox_id": sandbox_id},
    )
    return AnalyzeLogsResponse(
        agent_run_id=record.id,
        status=state.wire_status["running"],
        message="Analysis started for sandbox logs",
    )


def generate_setup_commands(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    body = call.values["body"]
    _check_plan(state)
    repo = _repo_in(state, org, body["repo_id"])
    if repo.archived:
        raise ApiError(400, f"Invalid input: repository {repo.full_name} is archived")
    trigger_source = body.get("trigger_source") or "setup-commands"
    record = state.create_run(
        org_id=org.id,
        user_id=call.user_id,
        kind="setup",
        operation="generate_setup_commands",
        source_type="SETUP_COMMANDS",
        prompt=body.get("prompt") or f"Generate setup commands for {repo.full_name}",
        now=call.now,
        repo_id=repo.id,
        sandbox_id=repo.sandbox_id,
        metadata={"trigger_source": trigger_source, "repo_id": repo.id},
    )
    return SetupCommandsResponse(
        agent_run_id=record.id,
        status=state.wire_status["running"],
        url=WEB_URL.format(record.id),
    )


# --- Slack -------------------------------------------------------------------------------
def generate_slack_connect_token(state: EmulatorState, call: Call) -> Any:
    org_id = call.values["body"]["org_id"]
    state.require_member(org_id, call.user_id)
    return SlackConnectToken(
        token=state.issue_slack_token(call.user_id, org_id, call.now),
        message="Token generated successfully",
        expires_in_minutes=SLACK_TOKEN_MINUTES,
    )


# --- organizations, repositories, integrations --------------------------------------------
def get_organizations(state: EmulatorState, call: Call) -> Any:
    skip, limit = call.values["skip"], call.values["limit"]
    orgs = state.orgs_of(call.user_id)
    return page_of([state.org_model(o) for o in orgs[skip : skip + limit]], len(orgs), skip, limit)


def get_repositories(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    skip, limit = call.values["skip"], call.values["limit"]
    repos = state.repos_of(org.id)
    return page_of([r.model() for r in repos[skip : skip + limit]], len(repos), skip, limit)


def get_integrations(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    return OrganizationIntegrations(
        organization_id=org.id,
        organization_name=org.name,
        integrations=list(org.integrations),
        total_active_integrations=sum(1 for i in org.integrations if i.active),
    )


def get_check_suite_settings(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    repo = _repo_in(state, org, call.values["repo_id"])
    return state.check_suites[repo.id]


def update_check_suite_settings(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    repo = _repo_in(state, org, call.values["repo_id"])
    changes = {k: v for k, v in call.values["body"].items() if v is not None and k in _SETTINGS}
    settings = attrs.evolve(state.check_suites[repo.id], **changes)
    state.check_suites[repo.id] = settings
    return {
        "success": True,
        "message": "Check suite settings updated",
        "repo_id": repo.id,
        "updated_fields": sorted(changes),
        "settings": settings,
    }


_SETTINGS: Final = frozenset(ENDPOINTS["update_check_suite_settings"].body.fields)  # type: ignore[union-attr]


# --- pull requests -------------------------------------------------------------------------
def _edit_pr(state: EmulatorState, call: Call, repo_id: int | None) -> Any:
    org = _org(state, call)
    pr = state.pull_requests.get(call.values["pr_id"])
    if (
        pr is None
        or pr.org_id != org.id
        or (repo_id is not None and pr.repo_id != repo_id)
        or not state.pull_request_visible(pr, call.now)
    ):
        raise ApiError(404, PR_NOT_FOUND)
    wanted = call.values["body"]["state"]
    error = None
    if wanted == "closed":
        pr.state = "closed"
    elif wanted == "open":
        if pr.state == "closed":
            pr.state = "open"
    elif pr.state == "closed":
        error = f"Pull request #{pr.number} is closed; reopen it first."
    else:
        pr.state = "draft" if wanted == "draft" else "open"
    return EditPullRequestResult(
        success=error is None,
        url=state.pull_request_url(pr),
        number=pr.number,
        title=pr.title,
        state=pr.state,
        error=error,
    )


def edit_pull_request(state: EmulatorState, call: Call) -> Any:
    return _edit_pr(state, call, call.values["repo_id"])


def edit_pull_request_simple(state: EmulatorState, call: Call) -> Any:
    return _edit_pr(state, call, None)


# --- CLI, MCP, OAuth -------------------------------------------------------------------------
def get_cli_rules(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    return CliRules(
        organization_rules=org.rules, user_custom_prompt=state.users[call.user_id].custom_prompt
    )


def get_mcp_providers(state: EmulatorState, call: Call) -> Any:
    return [provider for provider in state.mcp_providers if provider.is_mcp]


def get_oauth_token_status(state: EmulatorState, call: Call) -> Any:
    # The names of the providers the user has connected in this organization.
    org = _org(state, call)
    return sorted(state.oauth_tokens.get((call.user_id, org.id), {}))


def revoke_oauth_token(state: EmulatorState, call: Call) -> Any:
    org = _org(state, call)
    provider = call.values["provider"]
    if provider not in {p.name for p in state.mcp_providers}:
        raise ApiError(404, f"OAuth provider '{provider}' not found")
    tokens = state.oauth_tokens.get((call.user_id, org.id), {})
    revoked = 1 if tokens.pop(provider, None) is not None else 0
    return {
        "success": True,
        "provider": provider,
        "revoked": revoked,
        "message": f"Revoked {revoked} OAuth token(s) for {provider}.",
    }


OPERATIONS: Final[dict[str, Operation]] = {
    "get_users": get_users,
    "get_user": get_user,
    "get_current_user": get_current_user,
    "run": run,
    "get_run": get_run,
    "list_runs": list_runs,
    "resume_run": resume_run,
    "ban_all_checks": ban_all_checks,
    "unban_all_checks": unban_all_checks,
    "remove_from_pr": remove_from_pr,
    "get_run_logs": get_run_logs,
    "analyze_sandbox_logs": analyze_sandbox_logs,
    "generate_setup_commands": generate_setup_commands,
    "generate_slack_connect_token": generate_slack_connect_token,
    "get_organizations": get_organizations,
    "get_repositories": get_repositories,
    "get_integrations": get_integrations,
    "get_check_suite_settings": get_check_suite_settings,
    "update_check_suite_settings": update_check_suite_settings,
    "edit_pull_request": edit_pull_request,
    "edit_pull_request_simple": edit_pull_request_simple,
    "get_cli_rules": get_cli_rules,
    "get_mcp_providers": get_mcp_providers,
    "get_oauth_token_status": get_oauth_token_status,
    "revoke_oauth_token": revoke_oauth_token,
}
"""The handler of every operation of the endpoint table, by its name."""
