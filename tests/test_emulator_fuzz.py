"""The emulator against its own spec: generated requests, valid and not, get spec answers.

A schemathesis-like check built on hypothesis and hypothesis-jsonschema: for every operation
of the OpenAPI description, requests are generated from its path, query and body schemas,
mixed with the seeded world's ids (so that many requests hit real objects), and then broken
on purpose (wrong types, values out of range, unknown enum values, missing required fields,
bodies that are not JSON). They go out with a valid token, no token, a malformed or unknown
one, or another organization's. Every answer must be:

- never a 5xx;
- a status the operation documents, or a generic 401, 422 or 429; or a 403 / 404 where
  the description forgets them (see ``UNDOCUMENTED``), with the body the description gives
  those statuses everywhere else;
- JSON that validates against the schema documented for that status (``HTTPValidationError``
  for 422, ``APIRateLimitErrorResponse`` for 429).

Raw HTTP (``http.client``), not the SDK, so that nothing is checked client-side first.
``CODEGEN_FUZZ_EXAMPLES`` sets the requests per operation (default 40).
"""

from __future__ import annotations

import http.client
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from codegen_async._retry import parse_retry_after
from codegen_async.emulator import EmulatorThread

from .fuzz_spec import SPEC, bounded, resolve

EXAMPLES = int(os.environ.get("CODEGEN_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
GENERIC = {401, 422, 429}
GENERIC_SCHEMAS = {
    422: resolve({"$ref": "#/components/schemas/HTTPValidationError"}),
    429: resolve({"$ref": "#/components/schemas/APIRateLimitErrorResponse"}),
}
# The description documents 403 ("You do not have access to this organization.") on most
# organization-scoped operations and 404 on most that address an object by id, but forgets
# them on a few (repositories, check-suite settings, pull requests, OAuth tokens, setup
# commands, Slack tokens). The service, and so the emulator, answers them there too. They
# are allowed exactly there, with the body the description gives them elsewhere: the status
# code must match, and the message must be a string.
_ERROR_BODY = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "status_code": {"type": "integer"}},
    "required": ["message", "status_code"],
}
UNDOCUMENTED = {
    403: lambda op: op.org_scoped,
    404: lambda op: op.addresses_an_object,
}
COUNTS: Counter[str] = Counter()


@attrs.frozen
class Param:
    name: str
    location: str  # "path" or "query"
    required: bool
    schema: dict[str, Any]


@attrs.frozen
class Operation:
    """One operation of the description: how to call it and what it may answer."""

    operation_id: str
    method: str
    path: str
    params: tuple[Param, ...]
    body: dict[str, Any] | None
    responses: dict[int, dict[str, Any] | None]  # status -> JSON schema (None: undescribed)

    @property
    def name(self) -> str:
        return self.operation_id.split("_v1_", 1)[0]

    @property
    def org_scoped(self) -> bool:
        """Acts in one organization (given in the path, the query or the body)."""
        in_body = self.body is not None and "org_id" in self.body.get("properties", {})
        return in_body or any(p.name == "org_id" for p in self.params)

    @property
    def addresses_an_object(self) -> bool:
        """Names an object that may not exist (a run, user, repository, PR, provider...)."""
        named = {p.name for p in self.params} - {"org_id", "skip", "limit", "reverse"}
        in_body = self.body is not None and bool(
            {"agent_run_id", "repo_id"} & set(self.body.get("properties", {}))
        )
        return bool(named - {"user_id"} or "/users/{user_id}" in self.path) or in_body


def _operations() -> list[Operation]:
    ops = []
    for path, methods in SPEC["paths"].items():
        for method, op in methods.items():
            params = [
                Param(p["name"], p["in"], bool(p.get("required")), resolve(p["schema"]))
                for p in op.get("parameters", [])
                if p["in"] in ("path", "query")
            ]
            named = {p.name for p in params}
            # The description forgets {org_id} on the check-suite paths.
            for missing in re.findall(r"{(\w+)}", path):
                if missing not in named:
                    params.append(Param(missing, "path", True, {"type": "integer"}))
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            responses: dict[int, dict[str, Any] | None] = {}
            for code, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                responses[int(code)] = None if media is None else resolve(media.get("schema", {}))
            ops.append(
                Operation(
                    op["operationId"],
                    method.upper(),
                    path,
                    tuple(params),
                    None if body is None else resolve(body["schema"]),
                    responses,
                )
            )
    return ops


OPERATIONS = _operations()


# --- the world the emulator seeds, and the ways to authenticate -------------------------
@attrs.frozen
class World:
    base_url: str
    token: str
    foreign_token: str
    org_id: int
    second_org_id: int
    foreign_org_id: int
    user_id: int
    repo_ids: tuple[int, ...]
    sandbox_ids: tuple[int, ...]
    pr_ids: tuple[int, ...]


def _world(emu: EmulatorThread) -> World:
    server = emu.emulator
    info = emu._call(server.info)
    return World(
        base_url=emu.base_url,
        token=emu.token,
        foreign_token=server.foreign_token,
        org_id=emu.org_id,
        second_org_id=server.second_org_id,
        foreign_org_id=server.foreign_org_id,
        user_id=emu.user_id,
        repo_ids=tuple(info["repo_ids"]),
        sandbox_ids=tuple(int(i) for i in info["sandboxes"]),
        pr_ids=tuple(info["pull_request_ids"]),
    )


AUTH_KINDS = ("valid",) * 8 + ("none", "wrong", "malformed", "empty", "lowercase", "foreign")


def _auth_headers(kind: str, world: World) -> dict[str, str]:
    return {
        "valid": {"Authorization": f"Bearer {world.token}"},
        "none": {},
        "wrong": {"Authorization": "Bearer cg-emu-00000000000000000000000000000000"},
        "malformed": {"Authorization": f"Token {world.token}"},
        "empty": {"Authorization": "Bearer "},
        "lowercase": {"Authorization": f"bearer {world.token}"},
        "foreign": {"Authorization": f"Bearer {world.foreign_token}"},
    }[kind]


def _known_values(name: str, world: World) -> list[Any]:
    """Ids that exist in the seeded world (and a few near misses)."""
    return {
        "org_id": [world.org_id, world.second_org_id, world.foreign_org_id, 10**6],
        "user_id": [world.user_id, world.user_id + 1, 2001, 0],
        "agent_run_id": [1, 2, 5, 13, 14, 10**6],
        "repo_id": [*world.repo_ids, 900, 0],
        "sandbox_id": [*world.sandbox_ids, 99],
        "pr_id": [*world.pr_ids[:3], 99],
        "provider": ["github", "linear", "slack", "sentry"],
    }.get(name, [])


NOT_INTEGERS = st.sampled_from(["abc", "1.5", "1e3", "0x10", "true", "null", "-", "ü", " 1", "[]"])


def _valid_param(param: Param, world: World) -> st.SearchStrategy[Any]:
    known = _known_values(param.name, world)
    generated = from_schema(param.schema)
    if not known:
        return generated
    # Mostly ids that exist (so that answers carry data to check), sometimes any integer.
    return st.one_of(st.sampled_from(known), st.sampled_from(known), generated)


def _invalid_param(param: Param) -> st.SearchStrategy[Any]:
    schema = param.schema
    kinds = {schema.get("type")} | {b.get("type") for b in schema.get("anyOf", [])}
    if "integer" in kinds:
        bad: list[Any] = []
        if "minimum" in schema:
            bad.append(int(schema["minimum"]) - 1)
        if "maximum" in schema:
            bad.append(int(schema["maximum"]) + 1)
        return NOT_INTEGERS | st.sampled_from(bad) if bad else NOT_INTEGERS
    if "boolean" in kinds:
        return st.sampled_from(["maybe", "2", "yes please", ""])
    enum = schema.get("enum") or next(
        (b["enum"] for b in schema.get("anyOf", []) if "enum" in b), None
    )
    if enum:
        return st.sampled_from(["NOPE", "api", " API", "LOCAL,API"])
    return st.just("\x00")  # a plain string: only a NUL is wrong in every sense


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- bodies ------------------------------------------------------------------------------------
_SAMPLES: dict[str, Any] = {"string": "12", "integer": 12, "boolean": True, "array": [],
                            "object": {}, "null": None, "number": 1.5}  # fmt: skip


def _types_of(schema: dict[str, Any]) -> set[str]:
    kinds = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for branch in schema.get("anyOf", []):
        kinds |= _types_of(branch)
    return kinds


@st.composite
def _invalid_body(draw: st.DrawFn, schema: dict[str, Any]) -> bytes:
    """A body that breaks the schema in one of several ways."""
    how = draw(st.sampled_from(["top", "drop", "retype", "not json", "empty", "surrogate"]))
    if how == "not json":
        return draw(st.sampled_from([b"{", b"\xff\xfe\x00", b"prompt=hello", b"[1,2", b"nul"]))
    if how == "empty":
        return b""
    if how == "top":
        return json.dumps(draw(st.sampled_from([[], "x", 1, None, True]))).encode()
    document = draw(from_schema(bounded(schema)))
    properties = schema.get("properties", {})
    if how == "drop" and schema.get("required"):
        document.pop(draw(st.sampled_from(schema["required"])), None)
    elif how == "surrogate" and any("string" in _types_of(s) for s in properties.values()):
        key = draw(st.sampled_from([k for k, s in properties.items() if "string" in _types_of(s)]))
        document[key] = "fix \ud800 this"  # JSON can carry it escaped; no text holds it
    else:
        key = draw(st.sampled_from(sorted(properties)))
        allowed = _types_of(properties[key])
        document[key] = draw(st.sampled_from([v for k, v in _SAMPLES.items() if k not in allowed]))
    return json.dumps(document).encode()


# --- sending and checking ------------------------------------------------------------------
@attrs.frozen
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    label: str


@st.composite
def requests_for(draw: st.DrawFn, op: Operation, world: World) -> Request:
    mode = draw(st.sampled_from(["valid"] * 4 + ["bad path", "bad query", "bad body"]))
    auth = draw(st.sampled_from(AUTH_KINDS))
    path = op.path
    query: dict[str, str] = {}
    for param in op.params:
        broken = (mode == "bad path" and param.location == "path") or (
            mode == "bad query" and param.location == "query"
        )
        if broken and draw(st.booleans()):
            if param.location == "query" and param.required and draw(st.booleans()):
                continue  # a required query parameter, missing
            value = draw(_invalid_param(param))
        elif param.location == "query" and not param.required and draw(st.booleans()):
            continue  # optional, left out
        else:
            value = draw(_valid_param(param, world))
            if value is None:
                continue
        text = _encode(value)
        if param.location == "path":
            path = path.replace("{" + param.name + "}", quote(text, safe="") or "%20")
        else:
            query[param.name] = text
    body: bytes | None = None
    headers = _auth_headers(auth, world)
    if op.body is not None:
        if mode == "bad body":
            body = draw(_invalid_body(op.body))
        else:
            body = json.dumps(draw(from_schema(bounded(op.body)))).encode()
        headers = {**headers, "Content-Type": "application/json"}
    if query:
        path += "?" + urlencode(query)
    return Request(op.method, path, headers, body, f"{mode}, auth {auth}")


class Sender:
    """One keep-alive HTTP/1.1 connection to the emulator (reopened when it is closed)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def send(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request(request.method, request.path, request.body, request.headers)
                response = self.conn.getresponse()
                data = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                if headers.get("connection", "").lower() == "close":
                    self.close()
                return response.status, headers, data
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def check_answer(op: Operation, request: Request, status: int, headers: dict[str, str],
                 data: bytes) -> None:  # fmt: skip
    """The answer is one the description allows, with a body of the documented shape."""
    where = f"{request.method} {request.path} ({request.label}) -> {status}: {data[:300]!r}"
    COUNTS["requests"] += 1
    COUNTS[f"status {status}"] += 1
    assert status < 500, where
    forgotten = status in UNDOCUMENTED and UNDOCUMENTED[status](op)
    assert status in op.responses or status in GENERIC or forgotten, f"undocumented: {where}"
    assert headers.get("content-type", "").startswith("application/json"), where
    payload = json.loads(data)  # every answer is JSON
    if status in op.responses:
        schema = op.responses[status]
    elif forgotten:
        COUNTS[f"undocumented {status}"] += 1
        schema = _ERROR_BODY
        assert payload.get("status_code") == status, where
    else:
        schema = GENERIC_SCHEMAS.get(status)
    if schema:
        errors = sorted(Draft202012Validator(schema).iter_errors(payload), key=str)
        assert not errors, f"{where}\n{errors[0].message} at {list(errors[0].absolute_path)}"
    if status == 401:
        assert isinstance(payload, dict) and payload, where
    if status == 429:
        assert parse_retry_after(headers) is not None, f"429 without Retry-After: {where}"


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    # Quotas off here (a separate test covers 429s), so that requests reach every check.
    with EmulatorThread(time_scale=0.01, seed=0, rate_limit="off") as emu:
        yield emu


@pytest.fixture(scope="module")
def world(emulator: EmulatorThread) -> World:
    return _world(emulator)


def test_every_operation_of_the_description_is_fuzzed() -> None:
    assert len(OPERATIONS) == 25
    assert all(op.responses for op in OPERATIONS)


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_generated_requests_get_answers_from_the_spec(
    op: Operation, emulator: EmulatorThread, world: World
) -> None:
    sender = Sender(world.base_url)
    seen: Counter[int] = Counter()

    @FUZZ
    @given(requests_for(op, world))
    def check(request: Request) -> None:
        status, headers, data = sender.send(request)
        seen[status] += 1
        check_answer(op, request, status, headers, data)

    try:
        check()
    finally:
        sender.close()
    assert sum(seen.values()) >= min(EXAMPLES, 10)


# ("bearer" in lower case is a valid token: auth schemes are case-insensitive, RFC 7235.)
EDGE_AUTH = ("none", "wrong", "malformed", "empty")


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.name for op in OPERATIONS])
def test_no_token_a_bad_token_and_other_organizations(
    op: Operation, emulator: EmulatorThread, world: World
) -> None:
    """Deterministic edges: every way of being unauthenticated, and every organization."""
    sender = Sender(world.base_url)
    valid: dict[str, Any] = {
        "org_id": world.org_id, "user_id": world.user_id, "agent_run_id": 14,
        "repo_id": world.repo_ids[0], "sandbox_id": 1, "pr_id": world.pr_ids[0],
        "provider": "github",
    }  # fmt: skip
    body_examples = {
        "CreateAgentRunInput": {"prompt": "hello"},
        "ResumeAgentRunInput": {"agent_run_id": 13, "prompt": "go on"},
        "StopAgentRunInput": {"agent_run_id": 14},
        "GenerateSetupCommandsInput": {"repo_id": world.repo_ids[0]},
        "GenerateTokenRequest": {},  # the organization is filled in below
        "EditPRInput": {"state": "open"},
        "CheckSuiteSettingsRequest": {"check_retry_count": 1},
    }

    def build(auth: str, org_id: int) -> Request:
        path, query = op.path, {}
        for param in op.params:
            if param.name not in valid:
                continue  # optional paging and filters
            value = org_id if param.name == "org_id" else valid[param.name]
            if param.location == "path":
                path = path.replace("{" + param.name + "}", str(value))
            elif param.required or param.name == "org_id":
                query[param.name] = str(value)
        if query:
            path += "?" + urlencode(query)
        headers = _auth_headers(auth, world)
        body = None
        if op.body is not None:
            example = dict(body_examples[op.body["title"]])
            if "org_id" in op.body.get("properties", {}):
                example["org_id"] = org_id
            body = json.dumps(example).encode()
            headers["Content-Type"] = "application/json"
        return Request(op.method, path, headers, body, f"auth {auth}, org {org_id}")

    try:
        for auth in EDGE_AUTH:
            request = build(auth, world.org_id)
            status, headers, data = sender.send(request)
            check_answer(op, request, status, headers, data)
            assert status == 401, f"{request.label}: {status}"
        for auth, org_id in (("valid", world.foreign_org_id), ("valid", 10**6),
                             ("foreign", world.org_id), ("valid", world.second_org_id),
                             ("valid", world.org_id)):  # fmt: skip
            request = build(auth, org_id)
            status, headers, data = sender.send(request)
            check_answer(op, request, status, headers, data)
            outsider = org_id not in (world.org_id, world.second_org_id) or auth == "foreign"
            if op.org_scoped and outsider:
                assert status != 200, f"{request.label}: another organization's data"
    finally:
        sender.close()


def test_quota_answers_follow_the_spec() -> None:
    """With the documented quotas on, the 429s have the documented body and a Retry-After."""
    with EmulatorThread(time_scale=0.01, seed=0) as emu:
        sender = Sender(emu.base_url)
        op = next(o for o in OPERATIONS if o.name == "create_agent_run")
        request = Request(
            "POST",
            f"/v1/organizations/{emu.org_id}/agent/run",
            {"Authorization": f"Bearer {emu.token}", "Content-Type": "application/json"},
            b'{"prompt": "hello"}',
            "burst",
        )
        statuses = Counter()
        try:
            for _ in range(15):  # the quota is 10 a (scaled) minute
                status, headers, data = sender.send(request)
                statuses[status] += 1
                check_answer(op, request, status, headers, data)
        finally:
            sender.close()
    assert statuses[429] >= 1 and statuses[200] == 10, statuses


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    target = os.environ.get("CODEGEN_EMULATOR_FUZZ_REPORT")
    if target:
        with open(target, "w") as out:
            json.dump({"requests_per_operation": EXAMPLES, **COUNTS}, out)


@pytest.mark.parametrize(
    ("name", "path", "body"),
    [
        ("edit_pull_request_simple", "/v1/organizations/{org}/prs/1",
         {"state": "fix \ud800 this"}),
        ("create_agent_run", "/v1/organizations/{org}/agent/run",
         {"prompt": 5, "model": "\udcff"}),
        ("create_agent_run", "/v1/organizations/{org}/agent/run",
         {"prompt": "ok", "metadata": {"\ud800": "\udfff"}}),
    ],
)  # fmt: skip
def test_lone_surrogates_in_a_body_are_no_500(
    name: str, path: str, body: dict[str, Any], emulator: EmulatorThread, world: World
) -> None:
    """A 422 echoing ``"\\ud800"`` (or a run storing it) was a 500 (regression test)."""
    sender = Sender(world.base_url)
    op = next(o for o in OPERATIONS if o.name == name)
    request = Request(
        op.method,
        path.format(org=world.org_id),
        {"Authorization": f"Bearer {world.token}", "Content-Type": "application/json"},
        json.dumps(body).encode(),
        "lone surrogate",
    )
    try:
        status, headers, data = sender.send(request)
    finally:
        sender.close()
    check_answer(op, request, status, headers, data)
    assert status in (200, 422)
