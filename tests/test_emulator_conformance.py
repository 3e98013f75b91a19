"""Conformance: every operation of the OpenAPI description, answered as the spec says.

- Each operation of ``codegen-openapi3.json`` is served at its path and method.
- Each success answer validates against the spec's JSON schema (jsonschema, ``$ref``s
  resolved against ``components``), in both status styles.
- Each documented error status of each operation (plus 401, which the spec leaves out) is
  produced and its body validates against the spec's error schema, or against the
  ``{"message", "status_code"}`` shape where the spec gives none.
- Each success answer structures into the SDK's model with a strict cattrs converter
  (``forbid_extra_keys=True``): the emulator sends no field the models do not know.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Union

import aiohttp
import cattrs
import pytest
from cattrs.gen import make_dict_structure_fn, override
from jsonschema import Draft202012Validator

from codegen_async._converter import structure
from codegen_async._endpoints import ENDPOINTS, Endpoint
from codegen_async.emulator import Emulator
from codegen_async.models import RunStatus, SlackConnectToken, SourceType, User, UserRole


def _spec_path() -> Path:
    shared = Path(__file__).resolve().parents[2] / "shared/reference/codegen-openapi3.json"
    return shared if shared.exists() else Path(__file__).parent / "data/codegen-openapi3.json"


SPEC: dict[str, Any] = json.loads(_spec_path().read_text())
SPEC_OPS: dict[tuple[str, str], dict[str, Any]] = {
    (method.upper(), path): op for path, ops in SPEC["paths"].items() for method, op in ops.items()
}
OP_OF: dict[str, dict[str, Any]] = {
    name: SPEC_OPS[(e.method, e.path)]
    for name, e in ENDPOINTS.items()
    if (e.method, e.path) in SPEC_OPS
}
GENERIC_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["message", "status_code"],
    "properties": {"message": {"type": "string"}, "status_code": {"type": "integer"}},
}
LONG = (10_000.0, 10_000.0)
DATA_URI = "data:image/png;base64,iVBORw0KGgo="


def response_schema(name: str, status: int) -> dict[str, Any]:
    """The spec's schema of ``status`` for an operation; the generic error shape if none."""
    response = OP_OF[name]["responses"].get(str(status), {})
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        assert status >= 400, f"{name} {status} has no schema"
        schema = GENERIC_ERROR
    return schema


def check_schema(name: str, status: int, payload: Any) -> None:
    schema = {**response_schema(name, status), "components": SPEC["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=lambda e: e.path)
    assert not errors, f"{name} {status}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]
    )


# --- requests ------------------------------------------------------------------------------
class Ctx:
    """An emulator with a run in each state the walk needs, and an HTTP session."""

    def __init__(self, emu: Emulator, session: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.session = session
        self.run_id = 0
        self.done_run_id = 0

    async def send(
        self,
        name: str,
        *,
        path: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        body: Any = None,
        token: str | None = "default",
    ) -> tuple[int, Any, Any]:
        endpoint = ENDPOINTS[name]
        values: dict[str, Any] = {
            "org_id": self.emu.org_id,
            "agent_run_id": self.run_id,
            "user_id": self.emu.user_id,
            "sandbox_id": 1,
            "repo_id": 456,
            "pr_id": 1,
        }
        values.update(path or {})
        url = self.emu.base_url + endpoint.path.format(**values)
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {self.emu.token if token == 'default' else token}"
        kwargs: dict[str, Any] = {"params": query or {}, "headers": headers}
        if body is not None:
            kwargs["json"] = body
        async with self.session.request(endpoint.method, url, **kwargs) as resp:
            return resp.status, resp.headers, await resp.json()


Request = Callable[[Ctx], dict[str, Any]]

SUCCESS: dict[str, Request] = {
    "get_users": lambda c: {"query": {"skip": "2", "limit": "10"}},
    "get_user": lambda c: {},
    "get_current_user": lambda c: {},
    "run": lambda c: {
        "body": {
            "prompt": "Add tests",
            "repo_id": 456,
            "metadata": {"ticket": "ENG-1"},
            "images": [DATA_URI],
            "model": "claude-sonnet",
            "agent_type": "codegen",
        }
    },
    "get_run": lambda c: {"path": {"agent_run_id": c.done_run_id}},
    "list_runs": lambda c: {"query": {"limit": "50"}},
    "resume_run": lambda c: {"body": {"agent_run_id": c.done_run_id, "prompt": "More tests"}},
    "ban_all_checks": lambda c: {"body": {"agent_run_id": c.run_id}},
    "unban_all_checks": lambda c: {"body": {"agent_run_id": c.run_id}},
    "remove_from_pr": lambda c: {
        "body": {
            "agent_run_id": c.run_id,
            "before_card_order_id": "a0",
            "after_card_order_id": None,
        }
    },
    "get_run_logs": lambda c: {
        "path": {"agent_run_id": c.done_run_id},
        "query": {"limit": "3", "reverse": "true"},
    },
    "analyze_sandbox_logs": lambda c: {},
    "generate_setup_commands": lambda c: {
        "body": {"repo_id": 456, "prompt": None, "trigger_source": "setup-commands"}
    },
    "generate_slack_connect_token": lambda c: {"body": {"org_id": c.emu.org_id}},
    "get_organizations": lambda c: {},
    "get_repositories": lambda c: {"query": {"limit": "2"}},
    "get_integrations": lambda c: {},
    "get_check_suite_settings": lambda c: {"query": {"repo_id": "456"}},
    "update_check_suite_settings": lambda c: {
        "query": {"repo_id": "456"},
        "body": {
            "check_retry_count": 4,
            "ignored_checks": ["ci/lint"],
            "check_retry_counts": {"ci/test": 1},
            "custom_prompts": {"ci/test": "Only fix the test."},
            "high_priority_apps": None,
        },
    },
    "edit_pull_request": lambda c: {"body": {"state": "closed"}},
    "edit_pull_request_simple": lambda c: {
        "path": {"pr_id": 2},
        "body": {"state": "ready_for_review"},
    },
    "get_cli_rules": lambda c: {},
    "get_mcp_providers": lambda c: {},
    "get_oauth_token_status": lambda c: {"query": {"org_id": str(c.emu.org_id)}},
    "revoke_oauth_token": lambda c: {"query": {"provider": "linear", "org_id": str(c.emu.org_id)}},
}

FOREIGN = "foreign"  # stands for the foreign organization's id in the cases below


def _not_found(name: str) -> Request:
    run_ops = {"get_run", "get_run_logs"}
    body_run_ops = {"resume_run", "ban_all_checks", "unban_all_checks", "remove_from_pr"}
    if name in run_ops:
        return lambda c: {"path": {"agent_run_id": 987_654}}
    if name in body_run_ops:
        return lambda c: {"body": {"agent_run_id": 987_654, "prompt": "x"}}
    return {
        "get_user": lambda c: {"path": {"user_id": 987_654}},
        "run": lambda c: {"path": {"org_id": c.emu.second_org_id}, "body": {"prompt": "x"}},
        "analyze_sandbox_logs": lambda c: {"path": {"sandbox_id": 987_654}},
        "generate_setup_commands": lambda c: {"body": {"repo_id": 987_654}},
        # Not documented, but answered with the same error shape:
        "get_check_suite_settings": lambda c: {"query": {"repo_id": "987654"}},
        "update_check_suite_settings": lambda c: {"query": {"repo_id": "987654"}, "body": {}},
        "edit_pull_request": lambda c: {"path": {"pr_id": 987_654}, "body": {"state": "open"}},
        "edit_pull_request_simple": lambda c: {
            "path": {"pr_id": 987_654},
            "body": {"state": "open"},
        },
        "revoke_oauth_token": lambda c: {
            "query": {"provider": "myspace", "org_id": str(c.emu.org_id)}
        },
    }[name]


def _invalid(name: str) -> Request:
    endpoint = ENDPOINTS[name]
    if any(p.name == "org_id" for p in endpoint.path_params):

        def bad_org(c: Ctx) -> dict[str, Any]:
            request = SUCCESS[name](c)
            return {**request, "path": {**request.get("path", {}), "org_id": "not-a-number"}}

        return bad_org
    return {
        "get_organizations": lambda c: {"query": {"skip": "-1"}},
        "get_oauth_token_status": lambda c: {"query": {}},
        "revoke_oauth_token": lambda c: {"query": {"org_id": str(c.emu.org_id)}},
        "generate_slack_connect_token": lambda c: {"body": {"org_id": "one"}},
    }[name]


# (operation, status) -> how to provoke it: a request, or a fault to inject first.
def provoke(name: str, status: int) -> tuple[Request, dict[str, Any] | None]:
    endpoint = ENDPOINTS[name]
    has_org = any(p.name == "org_id" for p in endpoint.params)
    if status == 401:
        return (lambda c: {**SUCCESS[name](c), "token": "not-a-token"}), None
    if status == 403 and has_org:
        if any(p.name == "org_id" and p.location == "query" for p in endpoint.params):
            return (lambda c: {**SUCCESS[name](c), "query": {
                **SUCCESS[name](c).get("query", {}), "org_id": FOREIGN}}), None  # fmt: skip
        if endpoint.body is not None and "org_id" in endpoint.body.fields:
            return (lambda c: {"body": {"org_id": FOREIGN}}), None
        return (lambda c: {**SUCCESS[name](c), "path": {"org_id": FOREIGN}}), None
    if status == 422:
        try:
            return _invalid(name), None
        except KeyError:  # no parameters to get wrong: only a fault can produce it
            return SUCCESS[name], {"kind": "status", "status": 422}
    if status == 404:
        return _not_found(name), None
    if status == 400:
        return {
            "analyze_sandbox_logs": lambda c: {"path": {"sandbox_id": 2}},
            "generate_setup_commands": lambda c: {"body": {"repo_id": 461}},
        }[name], None
    if status == 402:
        return SUCCESS[name], {"max_runs": 0}
    # 403 on /users/me and 500 on setup commands: only a fault produces them.
    return SUCCESS[name], {"kind": "status", "status": status}


def documented_errors() -> list[tuple[str, int]]:
    cases = []
    for name, op in OP_OF.items():
        statuses = {int(code) for code in op["responses"] if code != "200"} | {401}
        cases += [(name, status) for status in sorted(statuses) if status != 429]
    return cases


def undocumented_errors() -> list[tuple[str, int]]:
    """Errors the spec does not list for an operation but the emulator answers."""
    cases = []
    for name, op in OP_OF.items():
        endpoint = ENDPOINTS[name]
        if "403" not in op["responses"] and any(p.name == "org_id" for p in endpoint.params):
            cases.append((name, 403))
    cases += [
        ("get_check_suite_settings", 404),
        ("update_check_suite_settings", 404),
        ("edit_pull_request", 404),
        ("edit_pull_request_simple", 404),
        ("revoke_oauth_token", 404),
    ]
    return cases


def resolve(ctx: Ctx, request: dict[str, Any]) -> dict[str, Any]:
    """Replace the FOREIGN placeholder with the foreign organization's id."""

    def fix(value: Any) -> Any:
        if value == FOREIGN:
            return ctx.emu.foreign_org_id
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    out = {k: fix(v) for k, v in request.items()}
    if "query" in out:
        out["query"] = {k: str(v) for k, v in out["query"].items()}
    return out


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def make_ctx(emu: Emulator, session: aiohttp.ClientSession) -> Ctx:
    ctx = Ctx(emu, session)
    status, _, running = await ctx.send("run", body={"prompt": "keep running", "repo_id": 456})
    assert status == 200
    ctx.run_id = running["id"]
    status, _, done = await ctx.send("run", body={"prompt": "finished", "repo_id": 457})
    assert status == 200
    ctx.done_run_id = done["id"]
    emu.finish_run(ctx.done_run_id, "completed")
    return ctx


# --- the tests -------------------------------------------------------------------------------
async def test_every_operation_of_the_spec_is_served() -> None:
    table = {(e.method, e.path) for e in ENDPOINTS.values()}
    assert table == set(SPEC_OPS)
    async with Emulator() as emu:
        served = {
            (route.method, route.resource.canonical)
            for route in emu.app.router.routes()
            if route.resource is not None
        }
    assert table <= served


@pytest.mark.parametrize("style", ["api", "docs"])
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
async def test_success_answers_match_the_spec(
    session: aiohttp.ClientSession, name: str, style: str
) -> None:
    async with Emulator(run_duration=LONG, status_style=style, rate_limit="off") as emu:  # type: ignore[arg-type]
        ctx = await make_ctx(emu, session)
        status, _, payload = await ctx.send(name, **resolve(ctx, SUCCESS[name](ctx)))
        assert status == 200, payload
        check_schema(name, 200, payload)
        if name == "get_run":  # a finished run with its pull request
            assert payload["github_pull_requests"] and payload["result"]
        if name in ("list_runs", "get_users", "get_repositories", "get_organizations"):
            assert payload["items"]


@pytest.mark.parametrize(
    ("name", "status"),
    [
        *documented_errors(),
        *(pytest.param(*c, id=f"{c[0]}-{c[1]}-extra") for c in undocumented_errors()),
    ],
)
async def test_error_answers_match_the_spec(
    session: aiohttp.ClientSession, name: str, status: int
) -> None:
    make_request, special = provoke(name, status)
    options: dict[str, Any] = {"run_duration": LONG, "rate_limit": "off"}
    if special and "max_runs" in special:
        options["max_runs"] = special["max_runs"]
    async with Emulator(**options) as emu:
        ctx = await make_ctx(emu, session) if "max_runs" not in options else Ctx(emu, session)
        if special and "kind" in special:
            emu.inject_fault(name, special["kind"], status=special["status"])
        got, headers, payload = await ctx.send(name, **resolve(ctx, make_request(ctx)))
        assert got == status, payload
        check_schema(name, status, payload)
        if status == 422:
            assert payload["detail"] and all(
                {"loc", "msg", "type"} <= set(d) for d in payload["detail"]
            )
        else:
            assert payload["status_code"] == status
        if status == 401:
            assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_rate_limit_answers_match_the_spec(session: aiohttp.ClientSession) -> None:
    limited = [name for name, op in OP_OF.items() if "429" in op["responses"]]
    assert len(limited) >= 15
    async with Emulator(run_duration=LONG, rate_limit="fixed") as emu:
        ctx = await make_ctx(emu, session)
        emu.reset_rate_limits()
        for name in limited:
            quota = ENDPOINTS[name].quota
            # Requests with a bad body still count, and create nothing.
            request = resolve(ctx, SUCCESS[name](ctx))
            if ENDPOINTS[name].body is not None:
                request["body"] = {}
            for _ in range(quota.limit):
                status, _, _ = await ctx.send(name, **request)
                assert status != 429
            status, headers, payload = await ctx.send(name, **request)
            assert status == 429, name
            check_schema(name, 429, payload)
            assert payload == {
                "message": "Rate limit exceeded. Please try again later.",
                "status_code": 429,
            }
            retry_after = headers["Retry-After"]
            assert retry_after.isdigit() and 1 <= int(retry_after) <= quota.window
        assert emu.stats()["rate_limited"] == len(limited)


# --- the models: a strict converter ------------------------------------------------------------
def strict_converter() -> cattrs.Converter:
    """cattrs with ``forbid_extra_keys=True`` and the SDK's wire-name rules."""
    conv = cattrs.Converter(forbid_extra_keys=True)

    def exact(kind: type) -> Callable[[Any, Any], Any]:
        def hook(value: Any, _: Any) -> Any:
            if type(value) is not kind:
                raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
            return value

        return hook

    for kind in (int, str, bool):
        conv.register_structure_hook(kind, exact(kind))
    conv.register_structure_hook(RunStatus, lambda v, _: RunStatus(exact(str)(v, str)))
    for enum in (UserRole, SourceType):
        members = {m.value: m for m in enum}
        conv.register_structure_hook(
            Union[enum, None],  # noqa: UP007
            lambda v, _, members=members: None if v is None else members[exact(str)(v, str)],
        )
    conv.register_structure_hook(Union[dict[str, Any], str, None], lambda v, _: v)  # noqa: UP007
    conv.register_structure_hook(
        User,
        make_dict_structure_fn(
            User, conv, _cattrs_forbid_extra_keys=True, _is_admin=override(rename="is_admin")
        ),
    )
    conv.register_structure_hook(
        SlackConnectToken,
        make_dict_structure_fn(
            SlackConnectToken, conv, _cattrs_forbid_extra_keys=True, received_at=override(omit=True)
        ),
    )
    return conv


STRICT = strict_converter()
MODELLED = sorted(
    name for name, e in ENDPOINTS.items() if e.response is not Any and e.response != dict[str, Any]
)


def test_the_strict_converter_is_strict() -> None:
    run = {"id": 1, "organization_id": 2, "status": "ACTIVE"}
    STRICT.structure(run, ENDPOINTS["get_run"].response)
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({**run, "surprise": True}, ENDPOINTS["get_run"].response)
    with pytest.raises(cattrs.BaseValidationError):
        STRICT.structure({**run, "id": "1"}, ENDPOINTS["get_run"].response)


@pytest.mark.parametrize("name", MODELLED)
async def test_answers_fit_the_models_exactly(session: aiohttp.ClientSession, name: str) -> None:
    endpoint: Endpoint = ENDPOINTS[name]
    async with Emulator(run_duration=LONG, rate_limit="off") as emu:
        ctx = await make_ctx(emu, session)
        status, _, payload = await ctx.send(name, **resolve(ctx, SUCCESS[name](ctx)))
        assert status == 200
        strict = STRICT.structure(payload, endpoint.response)
        assert structure(payload, endpoint.response) == strict or name == (
            "generate_slack_connect_token"  # differs only by its arrival time
        )


async def test_runs_in_every_status_fit_the_models(session: aiohttp.ClientSession) -> None:
    async with Emulator(run_duration=LONG, rate_limit="off") as emu:
        ctx = await make_ctx(emu, session)
        for status in ("failed", "cancelled", "paused"):
            _, _, run = await ctx.send("run", body={"prompt": status, "repo_id": 460})
            emu.finish_run(run["id"], status)
        await ctx.send("analyze_sandbox_logs")
        await ctx.send("generate_setup_commands", body={"repo_id": 458})
        for run_id in list(emu.state.runs):
            emu.state.runs[run_id].deadline = min(emu.state.runs[run_id].deadline, time.time())
        status, _, page = await ctx.send("list_runs", query={"limit": "100"})
        assert status == 200 and page["total"] == len(page["items"])
        check_schema("list_runs", 200, page)
        STRICT.structure(page, ENDPOINTS["list_runs"].response)
        for item in page["items"]:
            _, _, logs = await ctx.send("get_run_logs", path={"agent_run_id": item["id"]})
            check_schema("get_run_logs", 200, logs)
            STRICT.structure(logs, ENDPOINTS["get_run_logs"].response)
