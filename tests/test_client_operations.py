"""Every operation: the exact request it sends and how its answer is parsed (aioresponses)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from codegen_async import (
    ENDPOINTS,
    AgentRun,
    AgentRunWithLogs,
    AnalyzeLogsResponse,
    AsyncAgent,
    CheckSuiteSettings,
    CheckSuiteSettingsUpdate,
    CliRules,
    EditPullRequestResult,
    OAuthProvider,
    Organization,
    OrganizationIntegrations,
    Page,
    Repository,
    RunStatus,
    SetupCommandsResponse,
    SlackConnectToken,
    SourceType,
    User,
    UserRole,
)

from .conftest import BASE, ORG, TOKEN

USER = {
    "id": 5,
    "email": "ada@example.com",
    "github_user_id": "456789",
    "github_username": "ada",
    "avatar_url": "https://avatars.example/5",
    "full_name": "Ada Lovelace",
    "role": "ADMIN",
    "is_admin": True,
}
RUN = {
    "id": 77,
    "organization_id": ORG,
    "status": "ACTIVE",
    "created_at": "2025-01-14T10:00:00Z",
    "web_url": "https://codegen.com/agent/trace/77",
    "result": None,
    "summary": None,
    "source_type": "API",
    "github_pull_requests": [
        {"id": 9, "created_at": "2025-01-14T10:05:00", "title": "Fix", "url": None}
    ],
    "metadata": {"sandbox_id": 1},
}
PAGE = {"total": 1, "page": 1, "size": 100, "pages": 1}
REPO = {
    "id": 456,
    "name": "api",
    "full_name": "acme/api",
    "description": None,
    "github_id": "1001",
    "organization_id": ORG,
    "visibility": "private",
    "archived": False,
    "setup_status": "COMPLETE",
    "language": "Python",
}
ORGANIZATION = {"id": ORG, "name": "Acme", "settings": {"enable_pr_creation": False}}
CHECKS = {
    "check_retry_count": 2,
    "ignored_checks": ["lint"],
    "check_retry_counts": {"tests": 3},
    "custom_prompts": {"tests": "be careful"},
    "high_priority_apps": [],
    "available_check_suite_names": ["lint", "tests"],
}
PROVIDER = {
    "id": 1,
    "name": "linear",
    "issuer": "https://linear.app",
    "authorization_endpoint": "https://linear.app/oauth/authorize",
    "token_endpoint": "https://linear.app/oauth/token",
    "default_scopes": None,
    "is_mcp": True,
}
PNG = "data:image/png;base64,iVBORw0KGgo="

Call = Callable[[AsyncAgent], Awaitable[Any]]

# name, call, method, path with query, JSON body sent (None: no body), answer, check of result
CASES: list[tuple[str, Call, str, str, Any, Any, Callable[[Any], bool]]] = [
    (
        "get_current_user",
        lambda a: a.get_current_user(),
        "GET",
        "/v1/users/me",
        None,
        USER,
        lambda r: isinstance(r, User) and r.role is UserRole.ADMIN and r.role == "ADMIN",
    ),
    (
        "get_user",
        lambda a: a.get_user(user_id=5),
        "GET",
        f"/v1/organizations/{ORG}/users/5",
        None,
        USER,
        lambda r: isinstance(r, User) and r.github_username == "ada",
    ),
    (
        "get_users",
        lambda a: a.get_users(skip=10, limit=5),
        "GET",
        f"/v1/organizations/{ORG}/users?skip=10&limit=5",
        None,
        {"items": [USER], **PAGE},
        lambda r: isinstance(r, Page) and isinstance(r.items[0], User) and r.total == 1,
    ),
    (
        "run",
        lambda a: a.run(
            "Fix the bug",
            repo_id=456,
            metadata={"ticket": "T-1"},
            images=[PNG],
            model="claude",
            agent_type="claude_code",
        ),
        "POST",
        f"/v1/organizations/{ORG}/agent/run",
        {
            "prompt": "Fix the bug",
            "repo_id": 456,
            "metadata": {"ticket": "T-1"},
            "images": [PNG],
            "model": "claude",
            "agent_type": "claude_code",
        },
        RUN,
        lambda r: isinstance(r, AgentRun) and r.id == 77 and r.status == "running",
    ),
    (
        "get_run",
        lambda a: a.get_run(77),
        "GET",
        f"/v1/organizations/{ORG}/agent/run/77",
        None,
        {**RUN, "status": "COMPLETE", "result": "done"},
        lambda r: r.status == "completed" and r.is_terminal and r.source_type is SourceType.API,
    ),
    (
        "list_runs",
        lambda a: a.list_runs(user_id=5, source_type=SourceType.API, limit=50),
        "GET",
        f"/v1/organizations/{ORG}/agent/runs?user_id=5&source_type=API&skip=0&limit=50",
        None,
        {"items": [RUN], **PAGE},
        lambda r: isinstance(r.items[0], AgentRun),
    ),
    (
        "resume_run",
        lambda a: a.resume_run(77, "Carry on", images=[PNG]),
        "POST",
        f"/v1/organizations/{ORG}/agent/run/resume",
        {"agent_run_id": 77, "prompt": "Carry on", "images": [PNG]},
        RUN,
        lambda r: isinstance(r, AgentRun),
    ),
    (
        "ban_all_checks",
        lambda a: a.ban_all_checks(77, before_card_order_id="a0"),
        "POST",
        f"/v1/organizations/{ORG}/agent/run/ban",
        {"agent_run_id": 77, "before_card_order_id": "a0"},
        {"message": "banned"},
        lambda r: r == {"message": "banned"},
    ),
    (
        "unban_all_checks",
        lambda a: a.unban_all_checks(77),
        "POST",
        f"/v1/organizations/{ORG}/agent/run/unban",
        {"agent_run_id": 77},
        {"message": "unbanned"},
        lambda r: r == {"message": "unbanned"},
    ),
    (
        "remove_from_pr",
        lambda a: a.remove_from_pr(77, after_card_order_id="z9"),
        "POST",
        f"/v1/organizations/{ORG}/agent/run/remove-from-pr",
        {"agent_run_id": 77, "after_card_order_id": "z9"},
        {"success": True},
        lambda r: r == {"success": True},
    ),
    (
        "get_run_logs",
        lambda a: a.get_run_logs(77, skip=0, limit=2, reverse=True),
        "GET",
        f"/v1/alpha/organizations/{ORG}/agent/run/77/logs?skip=0&limit=2&reverse=true",
        None,
        {
            "id": 77,
            "organization_id": ORG,
            "status": "ACTIVE",
            "logs": [
                {"agent_run_id": 77, "message_type": "ACTION", "observation": {"ok": 1}},
                {"agent_run_id": 77, "observation": "plain text"},
            ],
            "total_logs": 2,
            "page": 1,
            "size": 2,
            "pages": 1,
        },
        lambda r: isinstance(r, AgentRunWithLogs) and r.logs[1].observation == "plain text",
    ),
    (
        "analyze_sandbox_logs",
        lambda a: a.analyze_sandbox_logs(sandbox_id=1),
        "POST",
        f"/v1/organizations/{ORG}/sandbox/1/analyze-logs",
        None,
        {"agent_run_id": 78, "status": "running", "message": "Analysis started"},
        lambda r: isinstance(r, AnalyzeLogsResponse) and r.status == RunStatus.RUNNING,
    ),
    (
        "generate_setup_commands",
        lambda a: a.generate_setup_commands(repo_id=456, prompt="Node project"),
        "POST",
        f"/v1/organizations/{ORG}/setup-commands/generate",
        {"repo_id": 456, "trigger_source": "setup-commands", "prompt": "Node project"},
        {"agent_run_id": 79, "status": "ACTIVE", "url": "https://codegen.com/agents/79"},
        lambda r: isinstance(r, SetupCommandsResponse) and r.url.endswith("/79"),
    ),
    (
        "generate_slack_connect_token",
        lambda a: a.generate_slack_connect_token(),
        "POST",
        "/v1/slack-connect/generate-token",
        {"org_id": ORG},
        {"token": "abc123def456", "message": "ok", "expires_in_minutes": 10},
        lambda r: (
            isinstance(r, SlackConnectToken)
            and r.connect_message == "Connect my account: abc123def456"
        ),
    ),
    (
        "get_organizations",
        lambda a: a.get_organizations(),
        "GET",
        "/v1/organizations?skip=0&limit=100",
        None,
        {"items": [ORGANIZATION], **PAGE},
        lambda r: (
            isinstance(r.items[0], Organization)
            and r.items[0].settings.enable_pr_creation is False
            and r.items[0].settings.enable_rules_detection is True
        ),
    ),
    (
        "get_repositories",
        lambda a: a.get_repositories(limit=1),
        "GET",
        f"/v1/organizations/{ORG}/repos?skip=0&limit=1",
        None,
        {"items": [REPO], **PAGE},
        lambda r: isinstance(r.items[0], Repository) and r.items[0].description is None,
    ),
    (
        "get_integrations",
        lambda a: a.get_integrations(),
        "GET",
        f"/v1/organizations/{ORG}/integrations",
        None,
        {
            "organization_id": ORG,
            "organization_name": "Acme",
            "integrations": [{"integration_type": "slack", "active": True, "token_id": 3}],
            "total_active_integrations": 1,
        },
        lambda r: isinstance(r, OrganizationIntegrations) and r.integrations[0].active,
    ),
    (
        "get_check_suite_settings",
        lambda a: a.get_check_suite_settings(456),
        "GET",
        f"/v1/organizations/{ORG}/repos/check-suite-settings?repo_id=456",
        None,
        CHECKS,
        lambda r: isinstance(r, CheckSuiteSettings) and r.check_retry_counts == {"tests": 3},
    ),
    (
        "update_check_suite_settings",
        lambda a: a.update_check_suite_settings(
            456, CheckSuiteSettingsUpdate(check_retry_count=3, ignored_checks=["lint"])
        ),
        "PUT",
        f"/v1/organizations/{ORG}/repos/check-suite-settings?repo_id=456",
        {"check_retry_count": 3, "ignored_checks": ["lint"]},
        {"updated": True},
        lambda r: r == {"updated": True},
    ),
    (
        "edit_pull_request",
        lambda a: a.edit_pull_request(456, 12, "draft"),
        "PATCH",
        f"/v1/organizations/{ORG}/repos/456/prs/12",
        {"state": "draft"},
        {"success": True, "number": 12, "state": "draft"},
        lambda r: isinstance(r, EditPullRequestResult) and r.success and r.number == 12,
    ),
    (
        "edit_pull_request_simple",
        lambda a: a.edit_pull_request_simple(12, "closed"),
        "PATCH",
        f"/v1/organizations/{ORG}/prs/12",
        {"state": "closed"},
        {"success": False, "error": "no permission"},
        lambda r: r.success is False and r.error == "no permission",
    ),
    (
        "get_cli_rules",
        lambda a: a.get_cli_rules(),
        "GET",
        f"/v1/organizations/{ORG}/cli/rules",
        None,
        {"organization_rules": "Use type hints", "user_custom_prompt": None},
        lambda r: isinstance(r, CliRules) and r.user_custom_prompt is None,
    ),
    (
        "get_mcp_providers",
        lambda a: a.get_mcp_providers(),
        "GET",
        "/v1/mcp-providers",
        None,
        [PROVIDER],
        lambda r: isinstance(r, list) and isinstance(r[0], OAuthProvider) and r[0].is_mcp,
    ),
    (
        "get_oauth_token_status",
        lambda a: a.get_oauth_token_status(),
        "GET",
        f"/v1/oauth/tokens/status?org_id={ORG}",
        None,
        ["linear", "slack"],
        lambda r: r == ["linear", "slack"],
    ),
    (
        "revoke_oauth_token",
        lambda a: a.revoke_oauth_token("linear"),
        "POST",
        f"/v1/oauth/tokens/revoke?provider=linear&org_id={ORG}",
        None,
        {"revoked": True},
        lambda r: r == {"revoked": True},
    ),
]


def test_every_operation_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(ENDPOINTS)


@pytest.mark.parametrize(
    ("name", "call", "method", "path", "body", "answer", "check"),
    CASES,
    ids=[c[0] for c in CASES],
)
async def test_request_shape_and_parsing(
    agent: AsyncAgent,
    name: str,
    call: Call,
    method: str,
    path: str,
    body: Any,
    answer: Any,
    check: Callable[[Any], bool],
) -> None:
    endpoint = ENDPOINTS[name]
    assert endpoint.method == method
    with aioresponses() as mock:
        mock.add(BASE + path, method=method, payload=answer)
        result = await call(agent)
        assert check(result), result
        ((key, calls),) = mock.requests.items()
        assert key[0] == method
        expected = URL(BASE + path)
        assert key[1].with_query(None) == expected.with_query(None)
        assert dict(key[1].query) == dict(expected.query)
        (sent,) = calls
        headers = sent.kwargs["headers"]
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert headers["Accept"] == "application/json"
        data = sent.kwargs["data"]
        if body is None:
            assert data is None
        else:
            assert headers["Content-Type"] == "application/json"
            assert json.loads(data) == body


async def test_org_id_argument_overrides_the_default(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.get(f"{BASE}/v1/organizations/9/users/5", payload=USER)
        await agent.get_user(org_id=9, user_id=5)
        assert (("GET", URL(f"{BASE}/v1/organizations/9/users/5"))) in mock.requests


async def test_generate_setup_commands_defaults(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.post(
            f"{BASE}/v1/organizations/{ORG}/setup-commands/generate",
            payload={"agent_run_id": 1, "status": "running", "url": "u"},
        )
        await agent.generate_setup_commands(456)
        (sent,) = next(iter(mock.requests.values()))
        assert json.loads(sent.kwargs["data"]) == {
            "repo_id": 456,
            "trigger_source": "setup-commands",
        }


async def test_iter_users_walks_every_page(agent: AsyncAgent) -> None:
    users = [{**USER, "id": i, "github_username": f"u{i}"} for i in range(5)]
    with aioresponses() as mock:
        for skip in (0, 2, 4):
            mock.get(
                f"{BASE}/v1/organizations/{ORG}/users?skip={skip}&limit=2",
                payload={
                    "items": users[skip : skip + 2],
                    "total": 5,
                    "page": skip // 2 + 1,
                    "size": 2,
                    "pages": 3,
                },
            )
        seen = [u.id async for u in agent.iter_users(page_size=2)]
    assert seen == [0, 1, 2, 3, 4]


async def test_iter_runs_skips_runs_pushed_onto_the_next_page(agent: AsyncAgent) -> None:
    # A run created during the walk pushes run 2 from page 1 onto page 2 (newest first).
    page1 = [{**RUN, "id": 3}, {**RUN, "id": 2}]
    page2 = [{**RUN, "id": 2}, {**RUN, "id": 1}]
    base = f"{BASE}/v1/organizations/{ORG}/agent/runs"
    with aioresponses() as mock:
        mock.get(
            f"{base}?skip=0&limit=2",
            payload={"items": page1, "total": 3, "page": 1, "size": 2, "pages": 2},
        )
        mock.get(
            f"{base}?skip=2&limit=2",
            payload={"items": page2, "total": 4, "page": 2, "size": 2, "pages": 2},
        )
        ids = [r.id async for r in agent.iter_runs(page_size=2)]
    assert ids == [3, 2, 1]


async def test_iter_run_logs_follows_total_logs(agent: AsyncAgent) -> None:
    base = f"{BASE}/v1/alpha/organizations/{ORG}/agent/run/77/logs"

    def page(n: int) -> dict[str, Any]:
        return {
            "id": 77,
            "organization_id": ORG,
            "logs": [{"agent_run_id": 77, "thought": f"t{n}"}],
            "total_logs": 2,
        }

    with aioresponses() as mock:
        mock.get(f"{base}?skip=0&limit=1&reverse=false", payload=page(0))
        mock.get(f"{base}?skip=1&limit=1&reverse=false", payload=page(1))
        thoughts = [log.thought async for log in agent.iter_run_logs(77, page_size=1)]
    assert thoughts == ["t0", "t1"]


async def test_unknown_fields_and_enum_values_do_not_break_parsing(agent: AsyncAgent) -> None:
    with aioresponses() as mock:
        mock.get(
            f"{BASE}/v1/users/me",
            payload={**USER, "role": "OWNER", "brand_new_field": {"x": 1}},
        )
        user = await agent.get_current_user()
    assert user.role == "OWNER"


def test_is_admin_is_deprecated() -> None:
    from codegen_async._converter import structure

    user = structure(USER, User)
    with pytest.warns(DeprecationWarning, match="role"):
        assert user.is_admin is True
    assert "is_admin" not in repr(user)
