"""The emulator's behaviour, driven with the SDK's AsyncAgent and with plain aiohttp.

Every emulator here runs at ``time_scale=0.01``: runs finish in 0.05-0.3 s and a minute of
quota lasts 0.6 s, so the whole file takes a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from codegen_async import (
    AsyncAgent,
    AuthenticationError,
    BadRequestError,
    CheckSuiteSettingsUpdate,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimits,
    RunStatus,
    SourceType,
    UserRole,
)
from codegen_async._endpoints import ENDPOINTS
from codegen_async.emulator import Emulator, EmulatorThread

SCALE = 0.01
LONG = (10_000.0, 10_000.0)  # runs that only end when a test ends them


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, failure_rate=0.0, rate_limit="off") as emulator:
        yield emulator


@pytest.fixture
async def agent(emu: Emulator) -> AsyncIterator[AsyncAgent]:
    async with AsyncAgent(
        token=emu.token, org_id=emu.org_id, base_url=emu.base_url, rate_limits=RateLimits.disabled()
    ) as client:
        yield client


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {emu.token}"}
    async with aiohttp.ClientSession(emu.base_url, headers=headers) as session:
        yield session


async def get_json(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, path, **kwargs) as resp:
        return resp.status, await resp.json()


async def wait_terminal(agent: AsyncAgent, run_id: int, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = await agent.get_run(run_id)
        if run.is_terminal:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run.status!r}"
        await asyncio.sleep(0.02)


# --- users and organizations ------------------------------------------------------------
async def test_current_user_is_an_admin_with_a_complete_profile(
    emu: Emulator, agent: AsyncAgent
) -> None:
    me = await agent.get_current_user()
    assert me.id == emu.user_id
    assert me.role == UserRole.ADMIN
    assert me.full_name and me.email and me.github_username
    with pytest.warns(DeprecationWarning, match="deprecated"):
        assert me.is_admin is True


async def test_users_of_all_roles_some_with_incomplete_profiles(agent: AsyncAgent) -> None:
    users = [u async for u in agent.iter_users(page_size=7)]
    assert len(users) >= 25
    assert len({u.id for u in users}) == len(users)
    assert {u.role for u in users} == {UserRole.ADMIN, UserRole.MANAGER, UserRole.MEMBER}
    assert any(u.email is None for u in users)
    assert any(u.full_name is None for u in users)
    page = await agent.get_users()
    assert (page.total, page.page, page.size, page.pages) == (len(users), 1, 100, 1)


async def test_get_user_and_unknown_user(emu: Emulator, agent: AsyncAgent) -> None:
    other = (await agent.get_users(skip=3, limit=1)).items[0]
    assert (await agent.get_user(other.id)).github_username == other.github_username
    with pytest.raises(NotFoundError) as info:
        await agent.get_user(999_999)
    assert info.value.message == "User not found."
    # A user of another organization is not found in this one.
    with pytest.raises(NotFoundError):
        await agent.get_user(2001)


@pytest.mark.parametrize(
    ("skip", "limit", "page", "pages", "count"),
    [
        (0, 10, 1, 3, 10),
        (10, 10, 2, 3, 10),
        (20, 10, 3, 3, 10),
        (25, 10, 3, 3, 5),
        (30, 10, 4, 3, 0),
    ],
)
async def test_pagination_arithmetic(
    agent: AsyncAgent, skip: int, limit: int, page: int, pages: int, count: int
) -> None:
    result = await agent.get_users(skip=skip, limit=limit)
    assert result.total == 30
    assert (result.page, result.pages, result.size, len(result.items)) == (
        page,
        pages,
        limit,
        count,
    )


async def test_organizations_and_repositories(emu: Emulator, agent: AsyncAgent) -> None:
    orgs = await agent.get_organizations()
    assert [o.id for o in orgs.items] == [emu.org_id, emu.second_org_id]
    assert emu.foreign_org_id not in {o.id for o in orgs.items}
    repos = [r async for r in agent.iter_repositories(page_size=2)]
    assert len(repos) >= 3
    assert {r.organization_id for r in repos} == {emu.org_id}
    assert any(r.archived for r in repos) and any(r.description is None for r in repos)
    assert (await agent.get_repositories(emu.second_org_id)).total == 0


# --- authentication -----------------------------------------------------------------------
async def test_missing_and_unknown_tokens_are_401(emu: Emulator) -> None:
    async with aiohttp.ClientSession(emu.base_url) as session:
        status, body = await get_json(session, "GET", "/v1/users/me")
        assert (status, body["status_code"]) == (401, 401)
        assert isinstance(body["message"], str) and body["message"]
        status, _ = await get_json(
            session, "GET", "/v1/users/me", headers={"Authorization": "Bearer nope"}
        )
        assert status == 401
        status, _ = await get_json(
            session, "GET", "/v1/users/me", headers={"Authorization": f"Basic {emu.token}"}
        )
        assert status == 401
    async with AsyncAgent(token="wrong", org_id=emu.org_id, base_url=emu.base_url) as bad:
        with pytest.raises(AuthenticationError):
            await bad.get_current_user()


async def test_other_organizations_are_403(emu: Emulator, agent: AsyncAgent) -> None:
    for call in (
        agent.get_users(emu.foreign_org_id),
        agent.get_run(1, org_id=emu.foreign_org_id),
        agent.run("hi", org_id=emu.foreign_org_id),
        agent.get_integrations(emu.foreign_org_id),
        agent.analyze_sandbox_logs(9, org_id=emu.foreign_org_id),
        agent.get_users(123_456),  # an organization that does not exist
    ):
        with pytest.raises(PermissionDeniedError) as info:
            await call
        assert info.value.message == "You do not have access to this organization."
        assert info.value.body == {
            "message": "You do not have access to this organization.",
            "status_code": 403,
        }


async def test_a_token_belongs_to_one_user(emu: Emulator) -> None:
    async with AsyncAgent(
        token=emu.foreign_token, org_id=emu.foreign_org_id, base_url=emu.base_url
    ) as foreigner:
        me = await foreigner.get_current_user()
        assert me.id != emu.user_id
        assert (await foreigner.get_users()).total >= 1
        with pytest.raises(PermissionDeniedError):
            await foreigner.get_users(emu.org_id)
    extra = emu.add_token()
    async with AsyncAgent(token=extra, org_id=emu.org_id, base_url=emu.base_url) as again:
        assert (await again.get_current_user()).id == emu.user_id


# --- request validation (raw HTTP: the SDK checks arguments before sending) ---------------
@pytest.mark.parametrize(
    ("method", "path", "body", "loc", "kind"),
    [
        ("GET", "/v1/organizations/{org}/users?limit=0", None, ["query", "limit"],
         "greater_than_equal"),
        ("GET", "/v1/organizations/{org}/users?limit=101", None, ["query", "limit"],
         "less_than_equal"),
        ("GET", "/v1/organizations/{org}/users?skip=-1", None, ["query", "skip"],
         "greater_than_equal"),
        ("GET", "/v1/organizations/{org}/users?skip=abc", None, ["query", "skip"], "int_parsing"),
        ("GET", "/v1/organizations/abc/users", None, ["path", "org_id"], "int_parsing"),
        ("GET", "/v1/organizations/{org}/agent/run/1.5", None, ["path", "agent_run_id"],
         "int_parsing"),
        ("GET", "/v1/organizations/{org}/agent/runs?source_type=EMAIL", None,
         ["query", "source_type"], "enum"),
        ("GET", "/v1/organizations/{org}/agent/runs?user_id=me", None, ["query", "user_id"],
         "int_parsing"),
        ("GET", "/v1/alpha/organizations/{org}/agent/run/1/logs?reverse=maybe", None,
         ["query", "reverse"], "bool_parsing"),
        ("GET", "/v1/organizations/{org}/repos/check-suite-settings", None,
         ["query", "repo_id"], "missing"),
        ("POST", "/v1/organizations/{org}/agent/run", {}, ["body", "prompt"], "missing"),
        ("POST", "/v1/organizations/{org}/agent/run", {"prompt": 5}, ["body", "prompt"],
         "string_type"),
        ("POST", "/v1/organizations/{org}/agent/run", {"prompt": "x", "repo_id": "456"},
         ["body", "repo_id"], "int_type"),
        ("POST", "/v1/organizations/{org}/agent/run", {"prompt": "x", "repo_id": 4.5},
         ["body", "repo_id"], "int_from_float"),
        ("POST", "/v1/organizations/{org}/agent/run", {"prompt": "x", "agent_type": "gpt"},
         ["body", "agent_type"], "literal_error"),
        ("POST", "/v1/organizations/{org}/agent/run", {"prompt": "x", "metadata": [1]},
         ["body", "metadata"], "dict_type"),
        ("POST", "/v1/organizations/{org}/agent/run", {"prompt": "x", "images": ["a", 2]},
         ["body", "images", 1], "string_type"),
        ("POST", "/v1/organizations/{org}/agent/run", [1, 2], ["body"], "model_attributes_type"),
        ("PATCH", "/v1/organizations/{org}/prs/1", {"state": "merged"}, ["body", "state"],
         "literal_error"),
        ("PUT", "/v1/organizations/{org}/repos/check-suite-settings?repo_id=456",
         {"check_retry_count": 11}, ["body", "check_retry_count"], "less_than_equal"),
        ("PUT", "/v1/organizations/{org}/repos/check-suite-settings?repo_id=456",
         {"check_retry_counts": {"ci": "2"}}, ["body", "check_retry_counts", "ci"], "int_type"),
        ("POST", "/v1/oauth/tokens/revoke?org_id={org}", None, ["query", "provider"], "missing"),
        ("POST", "/v1/slack-connect/generate-token", {"org_id": True}, ["body", "org_id"],
         "int_type"),
    ],
)  # fmt: skip
async def test_invalid_requests_are_422_in_fastapi_shape(
    emu: Emulator,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any,
    loc: list[Any],
    kind: str,
) -> None:
    kwargs = {} if body is None else {"json": body}
    status, payload = await get_json(http, method, path.format(org=emu.org_id), **kwargs)
    assert status == 422
    assert {"loc": loc, "type": kind} in [
        {"loc": d["loc"], "type": d["type"]} for d in payload["detail"]
    ]
    for detail in payload["detail"]:
        assert isinstance(detail["msg"], str) and detail["msg"]


async def test_malformed_json_and_missing_body(emu: Emulator, http: aiohttp.ClientSession) -> None:
    path = f"/v1/organizations/{emu.org_id}/agent/run"
    status, payload = await get_json(
        http, "POST", path, data=b'{"prompt": ', headers={"Content-Type": "application/json"}
    )
    assert status == 422
    (detail,) = payload["detail"]
    assert detail["type"] == "json_invalid" and detail["loc"][0] == "body"
    assert isinstance(detail["loc"][1], int)
    status, payload = await get_json(http, "POST", path)
    assert (status, payload["detail"][0]["loc"], payload["detail"][0]["type"]) == (
        422,
        ["body"],
        "missing",
    )


async def test_every_error_is_reported_at_once(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, payload = await get_json(
        http, "GET", "/v1/organizations/x/users", params={"skip": "-1", "limit": "500"}
    )
    assert status == 422
    assert [d["loc"] for d in payload["detail"]] == [
        ["path", "org_id"],
        ["query", "skip"],
        ["query", "limit"],
    ]
    assert payload["detail"][1]["ctx"] == {"ge": 0}
    assert payload["detail"][2]["ctx"] == {"le": 100}


async def test_unknown_paths_and_methods(emu: Emulator, http: aiohttp.ClientSession) -> None:
    status, payload = await get_json(http, "GET", "/v1/nothing/here")
    assert (status, payload) == (404, {"detail": "Not Found"})
    async with http.delete(f"/v1/organizations/{emu.org_id}/users") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET"
        assert await resp.json() == {"detail": "Method Not Allowed"}


# --- agent runs ---------------------------------------------------------------------------
async def test_run_lifecycle(emu: Emulator, agent: AsyncAgent) -> None:
    started = time.time()
    run = await agent.run("Add a health check endpoint", repo_id=457, metadata={"ticket": "OPS-1"})
    assert run.status == "running" and run.status.raw == "ACTIVE"
    assert run.source_type == SourceType.API
    assert run.result is None and run.github_pull_requests is None
    assert run.metadata == {"sandbox_id": 3, "ticket": "OPS-1"}
    assert emu.run_finished_at(run.id) is None
    done = await wait_terminal(agent, run.id)
    assert done.status == "completed" and done.status.raw == "COMPLETE"
    assert done.result and "Add a health check endpoint" in done.result
    (pr,) = done.github_pull_requests or []
    assert pr.url and pr.url.endswith(f"/pull/{pr.id and pr.url.rsplit('/', 1)[1]}")
    finished = emu.run_finished_at(run.id)
    assert finished is not None
    low, high = emu.state.config.run_duration
    assert started + low * SCALE - 0.01 <= finished <= started + high * SCALE + 1.0
    info = emu.run_info(run.id)
    assert info["status"] == "completed" and info["finished_at"] == finished


async def test_user_metadata_wins_and_runs_without_repo_keep_theirs(agent: AsyncAgent) -> None:
    mine = await agent.run("x", repo_id=456, metadata={"sandbox_id": 77})
    assert mine.metadata == {"sandbox_id": 77}
    plain = await agent.run("y")
    assert plain.metadata is None
    tagged = await agent.run("z", metadata={"a": [1, 2]})
    assert tagged.metadata == {"a": [1, 2]}


async def test_failures_follow_failure_rate() -> None:
    async with (
        Emulator(time_scale=SCALE, failure_rate=1.0, rate_limit="off") as emu,
        emu.client(rate_limits=RateLimits.disabled()) as agent,
    ):
        run = await agent.run("Upgrade the toolchain", repo_id=456)
        done = await wait_terminal(agent, run.id)
        assert done.status == "failed" and done.status.raw == "ERROR"
        assert done.result and "sandbox 1" in done.result
        assert done.github_pull_requests is None


async def test_docs_status_style() -> None:
    async with (
        Emulator(time_scale=SCALE, status_style="docs", failure_rate=0.0, rate_limit="off") as emu,
        emu.client() as agent,
    ):
        run = await agent.run("x")
        assert run.status.raw == "running"
        done = await wait_terminal(agent, run.id)
        assert done.status.raw == "completed" and done.status == RunStatus.COMPLETED
        analysis = await agent.analyze_sandbox_logs(1)
        assert analysis.status.raw == "running"
        emu.finish_run(analysis.agent_run_id, "cancelled")
        assert (await agent.get_run(analysis.agent_run_id)).status.raw == "cancelled"


@pytest.mark.parametrize(
    ("style", "words"),
    [
        ("api", {"running": "ACTIVE", "completed": "COMPLETE", "failed": "ERROR",
                 "cancelled": "CANCELLED", "paused": "PAUSED"}),
        ("docs", {"running": "running", "completed": "completed", "failed": "failed",
                  "cancelled": "cancelled", "paused": "paused"}),
    ],
)  # fmt: skip
async def test_finish_run_in_every_status_and_spelling(style: str, words: dict[str, str]) -> None:
    async with (
        Emulator(time_scale=SCALE, status_style=style, run_duration=LONG) as emu,  # type: ignore[arg-type]
        emu.client() as agent,
    ):
        for spelling, canonical in (
            ("completed", "completed"),
            ("ERROR", "failed"),
            ("cancelled", "cancelled"),
            ("paused", "paused"),
        ):
            run = await agent.run("x")
            assert run.status.raw == words["running"]
            emu.finish_run(run.id, spelling, result=f"forced {spelling}")
            got = await agent.get_run(run.id)
            assert got.status.raw == words[canonical]
            assert got.status == canonical
            assert got.result == f"forced {spelling}"
            assert (emu.run_finished_at(run.id) is None) == (canonical == "paused")
        with pytest.raises(ValueError):
            emu.finish_run(run.id, "exploded")
        with pytest.raises(KeyError):
            emu.finish_run(10**9)


async def test_resume_paused_and_finished_runs(emu: Emulator, agent: AsyncAgent) -> None:
    paused = [r async for r in agent.iter_runs() if r.status == "paused"]
    assert paused, "the seeded history has a paused run"
    resumed = await agent.resume_run(paused[0].id, "Per tenant, please.")
    assert resumed.status == "running"
    assert (await wait_terminal(agent, paused[0].id)).status == "completed"
    again = await agent.resume_run(paused[0].id, "Also add a metric.")
    assert again.status == "running"
    logs = [entry async for entry in agent.iter_run_logs(paused[0].id)]
    assert [e.observation for e in logs if e.message_type == "USER_MESSAGE"][-2:] == [
        "Per tenant, please.",
        "Also add a metric.",
    ]
    with pytest.raises(NotFoundError) as info:
        await agent.resume_run(10**9, "x")
    assert info.value.message == "Agent run not found."


async def test_ban_unban_and_remove_stop_the_run() -> None:
    async with Emulator(time_scale=SCALE, run_duration=LONG) as emu, emu.client() as agent:
        first = await agent.run("a", repo_id=456)
        answer = await agent.ban_all_checks(first.id)
        assert answer["success"] is True
        assert (await agent.get_run(first.id)).status == "cancelled"
        assert emu.run_info(first.id)["banned"] is True
        await agent.unban_all_checks(first.id)
        assert emu.run_info(first.id)["banned"] is False
        second = await agent.run("b", repo_id=456)
        await agent.remove_from_pr(second.id)
        assert (await agent.get_run(second.id)).status == "cancelled"
        with pytest.raises(NotFoundError):
            await agent.ban_all_checks(10**9)


async def test_list_runs_newest_first_with_filters(emu: Emulator, agent: AsyncAgent) -> None:
    seeded = await agent.list_runs()
    ids = [r.id for r in seeded.items]
    assert ids == sorted(ids, reverse=True)
    new = [await agent.run(f"task {i}") for i in range(3)]
    page = await agent.list_runs(limit=2)
    assert [r.id for r in page.items] == [new[2].id, new[1].id]
    assert page.total == seeded.total + 3
    assert page.pages == math.ceil(page.total / 2)
    second = await agent.list_runs(skip=2, limit=2)
    assert second.page == 2 and second.items[0].id == new[0].id

    mine = [r async for r in agent.iter_runs(user_id=emu.user_id, page_size=3)]
    assert mine and all(emu.run_info(r.id)["user_id"] == emu.user_id for r in mine)
    assert len(mine) < page.total
    slack = await agent.list_runs(source_type=SourceType.SLACK)
    assert slack.total >= 1 and {r.source_type for r in slack.items} == {SourceType.SLACK}
    both = await agent.list_runs(user_id=emu.user_id, source_type="API")
    assert all(r.source_type == "API" for r in both.items)
    assert {r.id for r in new} <= {r.id for r in both.items}
    assert (await agent.list_runs(user_id=424242)).total == 0
    other = await agent.list_runs(org_id=emu.second_org_id)
    assert other.total == 0 and other.pages == 0


async def test_run_logs_pages_and_order(emu: Emulator, agent: AsyncAgent) -> None:
    run = await agent.run("Write docs", repo_id=459)
    await wait_terminal(agent, run.id)
    full = await agent.get_run_logs(run.id)
    assert full.total_logs == len(full.logs) >= 3
    assert full.logs[0].message_type == "USER_MESSAGE"
    assert full.logs[-1].message_type == "FINAL_ANSWER"
    times = [e.created_at_datetime for e in full.logs]
    assert times == sorted(times)  # type: ignore[type-var]
    backwards = await agent.get_run_logs(run.id, reverse=True, limit=2)
    assert [e.message_type for e in backwards.logs] == ["FINAL_ANSWER", full.logs[-2].message_type]
    assert (backwards.page, backwards.size, backwards.pages) == (
        1,
        2,
        math.ceil(full.total_logs / 2),  # type: ignore[operator]
    )
    walked = [e async for e in agent.iter_run_logs(run.id, page_size=2)]
    assert walked == full.logs


async def test_no_repos_in_org_is_404(emu: Emulator, agent: AsyncAgent) -> None:
    with pytest.raises(NotFoundError) as info:
        await agent.run("x", org_id=emu.second_org_id)
    assert info.value.message.startswith("No repos found in the organization")
    with pytest.raises(NotFoundError):
        await agent.run("x", repo_id=900)  # the foreign organization's repository


async def test_plan_limit_is_402() -> None:
    async with Emulator(time_scale=SCALE, max_runs=2) as emu, emu.client() as agent:
        await agent.run("one")
        await agent.analyze_sandbox_logs(1)
        for call in (agent.run("three"), agent.generate_setup_commands(456)):
            with pytest.raises(PaymentRequiredError) as info:
                await call
            assert "billing plan" in info.value.message
        assert emu.stats()["runs_created"] == 2


# --- sandbox analysis and setup commands ------------------------------------------------
async def test_analysis_names_the_error_and_suggests_a_fix(agent: AsyncAgent) -> None:
    started = await agent.analyze_sandbox_logs(1)
    assert started.status == "running" and started.message
    done = await wait_terminal(agent, started.agent_run_id)
    assert done.status == "completed"
    assert "ERESOLVE" in done.result and "error" in done.result.lower()
    assert "solution" in done.result.lower() and "@hello-pangea/dnd" in done.result
    assert done.metadata == {"sandbox_id": 1}
    other = await wait_terminal(agent, (await agent.analyze_sandbox_logs(3)).agent_run_id)
    assert "psycopg2" in other.result


async def test_sandbox_errors(emu: Emulator, agent: AsyncAgent) -> None:
    with pytest.raises(BadRequestError) as bad:
        await agent.analyze_sandbox_logs(2)
    assert bad.value.message == "No logs available for analysis"
    for sandbox in (424242, 9):  # unknown, and another organization's
        with pytest.raises(NotFoundError) as missing:
            await agent.analyze_sandbox_logs(sandbox)
        assert missing.value.message == "Sandbox not found"
    assert emu.stats()["runs_created"] == 0


async def test_setup_commands_are_a_shell_script(agent: AsyncAgent) -> None:
    started = await agent.generate_setup_commands(456, prompt="Node.js with TypeScript")
    assert started.status == "running" and started.url.endswith(str(started.agent_run_id))
    done = await wait_terminal(agent, started.agent_run_id)
    assert done.source_type == SourceType.SETUP_COMMANDS
    assert done.result.startswith("#!/usr/bin/env bash\n")
    assert "npm ci" in done.result and "Node.js with TypeScript" in done.result
    with pytest.raises(NotFoundError):
        await agent.generate_setup_commands(424242)
    with pytest.raises(BadRequestError):
        await agent.generate_setup_commands(461)  # archived


async def test_docs_workflow_sandbox_id_leads_to_an_analysis(agent: AsyncAgent) -> None:
    test_run = await agent.run("Execute the setup commands", repo_id=460)
    sandbox_id = test_run.metadata.get("sandbox_id")  # type: ignore[union-attr]
    analysis = await agent.analyze_sandbox_logs(sandbox_id)
    done = await wait_terminal(agent, analysis.agent_run_id)
    assert "connection refused" in done.result


# --- the rest of the API ------------------------------------------------------------------
async def test_slack_token_is_single_use_and_expires() -> None:
    scale = 0.0005  # ten minutes last 0.3 s
    async with Emulator(time_scale=scale) as emu, emu.client() as agent:
        token = await agent.generate_slack_connect_token()
        assert token.expires_in_minutes == 10 and token.message
        assert token.connect_message == f"Connect my account: {token.token}"
        assert emu.connect_slack(token.token) == {
            "connected": True,
            "user_id": emu.user_id,
            "org_id": emu.org_id,
        }
        assert emu.connect_slack(token.token) == {
            "connected": False,
            "reason": "token already used",
        }
        late = await agent.generate_slack_connect_token()
        await asyncio.sleep(600 * scale + 0.05)
        assert emu.connect_slack(late.token) == {"connected": False, "reason": "token expired"}
        assert emu.connect_slack("never-issued")["connected"] is False
        with pytest.raises(PermissionDeniedError):
            await agent.generate_slack_connect_token(emu.foreign_org_id)


async def test_pull_requests(emu: Emulator, agent: AsyncAgent) -> None:
    closed = await agent.edit_pull_request(456, 1, "closed")
    assert (closed.success, closed.state) == (True, "closed")
    refused = await agent.edit_pull_request_simple(1, "draft")
    assert refused.success is False and refused.error
    reopened = await agent.edit_pull_request_simple(1, "open")
    assert reopened.state == "open"
    assert (await agent.edit_pull_request_simple(2, "ready_for_review")).state == "open"
    with pytest.raises(NotFoundError):
        await agent.edit_pull_request(457, 1, "closed")  # PR 1 is in repo 456
    with pytest.raises(NotFoundError):
        await agent.edit_pull_request_simple(424242, "closed")
    async with Emulator(time_scale=SCALE, run_duration=LONG) as slow, slow.client() as other:
        run = await other.run("x", repo_id=456)
        pr_id = slow.run_info(run.id)["pull_request_id"]
        with pytest.raises(NotFoundError):  # the run has not opened it yet
            await other.edit_pull_request_simple(pr_id, "closed")
        slow.finish_run(run.id)
        assert (await other.edit_pull_request_simple(pr_id, "draft")).state == "draft"


async def test_check_suite_settings(agent: AsyncAgent) -> None:
    before = await agent.get_check_suite_settings(456)
    assert before.available_check_suite_names
    answer = await agent.update_check_suite_settings(
        456, CheckSuiteSettingsUpdate(check_retry_count=5, ignored_checks=["ci/lint"])
    )
    assert answer["success"] is True
    after = await agent.get_check_suite_settings(456)
    assert (after.check_retry_count, after.ignored_checks) == (5, ["ci/lint"])
    assert after.custom_prompts == before.custom_prompts
    with pytest.raises(NotFoundError):
        await agent.get_check_suite_settings(424242)


async def test_integrations_rules_providers_and_oauth(emu: Emulator, agent: AsyncAgent) -> None:
    integrations = await agent.get_integrations()
    assert integrations.organization_id == emu.org_id
    active = [i for i in integrations.integrations if i.active]
    assert integrations.total_active_integrations == len(active) >= 2
    rules = await agent.get_cli_rules()
    assert rules.organization_rules and rules.user_custom_prompt
    providers = await agent.get_mcp_providers()
    assert providers and all(p.is_mcp for p in providers)
    assert await agent.get_oauth_token_status() == ["linear", "sentry"]
    revoked = await agent.revoke_oauth_token("linear")
    assert revoked["revoked"] == 1
    assert await agent.get_oauth_token_status() == ["sentry"]
    with pytest.raises(NotFoundError):
        await agent.revoke_oauth_token("myspace")


# --- seeds, scale, stats, admin routes ------------------------------------------------------
async def test_same_seed_same_world_and_same_outcomes() -> None:
    async def snapshot(seed: int) -> tuple[Any, ...]:
        async with Emulator(seed=seed, time_scale=SCALE) as emu, emu.client() as agent:
            users = (await agent.get_users()).items
            runs = [await agent.run(f"r{i}") for i in range(4)]
            infos = [emu.run_info(r.id) for r in runs]
            return (
                emu.token,
                [(u.github_username, u.role, u.email) for u in users],
                [(i["planned_status"], round(i["deadline"] - i["created_at"], 9)) for i in infos],
            )

    first, again, other = await snapshot(7), await snapshot(7), await snapshot(8)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]


async def test_ten_thousand_runs(emu: Emulator, http: aiohttp.ClientSession) -> None:
    other_user = emu.user_id + 1
    before = (
        await get_json(
            http,
            "GET",
            f"/v1/organizations/{emu.org_id}/agent/runs",
            params={"user_id": str(other_user)},
        )
    )[1]["total"]
    now = time.time()
    for i in range(10_000):
        emu.state.create_run(
            org_id=emu.org_id,
            user_id=emu.user_id + i % 3,
            kind="run",
            operation="run",
            source_type="API",
            prompt=f"bulk {i}",
            now=now,
        )
    status, page = await get_json(
        http, "GET", f"/v1/organizations/{emu.org_id}/agent/runs", params={"limit": "100"}
    )
    assert status == 200 and page["total"] >= 10_000 and len(page["items"]) == 100
    status, page = await get_json(
        http,
        "GET",
        f"/v1/organizations/{emu.org_id}/agent/runs",
        params={"user_id": str(other_user), "skip": "3000"},
    )
    assert status == 200 and page["total"] == before + 3333 and len(page["items"]) == 100
    assert emu.stats()["runs"]["total"] >= 10_000


async def test_stats_count_routes_statuses_and_runs(emu: Emulator, agent: AsyncAgent) -> None:
    emu.reset_stats()
    await agent.get_current_user()
    await agent.run("x")
    await agent.analyze_sandbox_logs(1)
    with pytest.raises(NotFoundError):
        await agent.get_run(10**9)
    stats = emu.stats()
    assert set(stats["requests"]) == {e.route for e in ENDPOINTS.values()}
    assert stats["requests"][ENDPOINTS["get_current_user"].route] == 1
    assert stats["requests"][ENDPOINTS["get_run"].route] == 1
    assert stats["responses"] == {"200": 3, "404": 1}
    assert stats["runs_created"] == 2
    assert stats["runs_created_by_operation"] == {"run": 1, "analyze_sandbox_logs": 1}
    assert stats["rate_limited"] == 0 and stats["max_in_flight"] >= 1
    json.dumps(stats)  # JSON-ready
    emu.reset_stats()
    assert emu.stats()["requests_total"] == 0


async def test_admin_routes(emu: Emulator, agent: AsyncAgent) -> None:
    run = await agent.run("x")
    async with aiohttp.ClientSession(emu.base_url) as admin:  # no token needed
        status, info = await get_json(admin, "GET", f"/_emulator/runs/{run.id}")
        assert status == 200 and info["status"] in ("running", "completed")
        status, info = await get_json(
            admin,
            "POST",
            f"/_emulator/runs/{run.id}/finish",
            json={"status": "failed", "result": "boom"},
        )
        assert status == 200 and info["status"] == "failed" and info["finished_at"] > 0
        assert (await agent.get_run(run.id)).result == "boom"
        status, _ = await get_json(admin, "POST", "/_emulator/runs/999999/finish", json={})
        assert status == 404
        status, _ = await get_json(
            admin, "POST", f"/_emulator/runs/{run.id}/finish", json={"status": "exploded"}
        )
        assert status == 422
        status, stats = await get_json(admin, "GET", "/_emulator/stats")
        assert status == 200 and stats["runs_created"] == 1
        status, _ = await get_json(admin, "POST", "/_emulator/reset-stats")
        assert status == 200 and emu.stats()["runs_created"] == 0
        status, created = await get_json(admin, "POST", "/_emulator/tokens", json={})
        assert status == 200 and created["user_id"] == emu.user_id
        status, info = await get_json(admin, "GET", "/_emulator/info")
        assert status == 200 and info["org_id"] == emu.org_id
        assert info["sandboxes"]["2"]["has_logs"] is False
        assert emu.token not in json.dumps(info)
    async with AsyncAgent(token=created["token"], base_url=emu.base_url) as other:
        assert (await other.get_current_user()).id == emu.user_id


def test_settings_are_checked() -> None:
    for bad in (
        {"time_scale": 0},
        {"port": 70_000},
        {"rate_limit": "token-bucket"},
        {"status_style": "shouting"},
        {"run_duration": (3.0, 1.0)},
        {"failure_rate": 1.5},
        {"org_id": 0},
        {"max_runs": -1},
        {"token": "has space"},
    ):
        with pytest.raises(ValueError):
            Emulator(**bad)  # type: ignore[arg-type]


async def test_custom_token_org_and_repr(unused_tcp_port: int) -> None:
    async with Emulator(token="sk-mine", org_id=77, port=unused_tcp_port) as emu:
        assert emu.base_url == f"http://127.0.0.1:{unused_tcp_port}"
        assert (emu.token, emu.org_id, emu.second_org_id, emu.foreign_org_id) == (
            "sk-mine",
            77,
            78,
            79,
        )
        assert "sk-mine" not in repr(emu)
        async with emu.client() as agent:
            assert (await agent.get_users()).total == 30
    assert not emu.running


# --- the threaded emulator ---------------------------------------------
def test_emulator_thread_serves_blocking_code() -> None:
    with EmulatorThread(time_scale=SCALE, run_duration=LONG) as emu:
        request = urllib.request.Request(
            f"{emu.base_url}/v1/organizations/{emu.org_id}/agent/run",
            data=json.dumps({"prompt": "from a thread"}).encode(),
            headers={"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as resp:
            run = json.loads(resp.read())
        assert run["status"] == "ACTIVE"
        assert emu.run_finished_at(run["id"]) is None
        emu.finish_run(run["id"], "completed", "ok")
        assert emu.run_finished_at(run["id"]) is not None
        assert emu.run_info(run["id"])["status"] == "completed"
        emu.inject_fault("get_current_user", "status", status=503)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{emu.base_url}/v1/users/me",
                    headers={"Authorization": f"Bearer {emu.token}"},
                )
            )
        assert info.value.code == 503
        info.value.close()
        stats = emu.stats()
        assert stats["runs_created"] == 1 and stats["responses"]["503"] == 1
        emu.reset_stats()
        assert emu.stats()["requests_total"] == 0
        assert emu.client_kwargs()["base_url"] == emu.base_url
    emu.stop()  # twice is fine
