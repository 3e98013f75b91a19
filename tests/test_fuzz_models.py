"""Spec-driven fuzzing of the models: every response schema of the OpenAPI description.

Responses are generated with hypothesis-jsonschema from each operation's documented schemas
(``$ref`` resolved against ``components``; unknown properties and nulls included) and fed
through the transport's parser exactly as an HTTP body would be. Valid ones must parse into
the endpoint table's response type, faithfully; ones that break the schema (a wrong type, a
missing required field) must raise ``APIResponseValidationError`` naming the field, never a
bare ``KeyError``/``TypeError``/``AttributeError``. Documented error bodies must become the
typed error of their status.

``CODEGEN_FUZZ_EXAMPLES`` sets the examples per schema (default 40, which keeps this file well
under a minute on a small machine; the README's figures come from a run with 400).
``CODEGEN_FUZZ_REPORT=path.json`` writes how many examples each kind of check saw.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from codegen_async import ENDPOINTS, APIResponseValidationError, APIStatusError, RateLimits
from codegen_async._config import resolve_config
from codegen_async._converter import ResponseShapeError, structure
from codegen_async._endpoints import Endpoint
from codegen_async._retry import MAX_RETRY_AFTER, backoff_delay, parse_retry_after
from codegen_async._transport import Transport, _Answer, build_status_error
from codegen_async.errors import UnprocessableEntityError, error_class_for
from codegen_async.models import RunStatus

from .fuzz_spec import SPEC, bounded, resolve

EXAMPLES = int(os.environ.get("CODEGEN_FUZZ_EXAMPLES", "40"))
URL = "https://api.example.test/v1/fuzz"
COUNTS: Counter[str] = Counter()

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

# Where a model is deliberately more lenient than the schema (documented in models.py):
# an organization without ``settings`` gets the documented defaults instead of failing.
TOLERATED_MISSING = {("OrganizationResponse", "settings")}


@attrs.frozen
class Case:
    """One documented response: an operation, a status code, and its JSON schema."""

    endpoint: Endpoint
    status: int
    schema: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.endpoint.name}-{self.status}"


def _cases() -> list[Case]:
    by_operation = {e.operation_id: e for e in ENDPOINTS.values()}
    cases = []
    for ops in SPEC["paths"].values():
        for op in ops.values():
            endpoint = by_operation[op["operationId"]]
            for code, response in op["responses"].items():
                media = response.get("content", {}).get("application/json")
                if media is not None:
                    cases.append(Case(endpoint, int(code), resolve(media.get("schema", {}))))
    return cases


def _distinct(cases: list[Case]) -> list[Case]:
    """One case per distinct (status class, schema, response type): shared schemas once."""
    seen: dict[tuple[str, str, str], Case] = {}
    for case in cases:
        key = (
            str(case.status) if case.status >= 400 else "2xx",
            json.dumps(case.schema, sort_keys=True),
            repr(case.endpoint.response) if case.status < 300 else "error",
        )
        seen.setdefault(key, case)
    return list(seen.values())


CASES = _cases()
SUCCESS = [c for c in CASES if c.status < 300]
ERRORS = [c for c in CASES if c.status >= 400]
FUZZED_SUCCESS = _distinct(SUCCESS)
FUZZED_ERRORS = _distinct(ERRORS)
TYPED = [c for c in FUZZED_SUCCESS if c.endpoint.response is not Any]


def _transport() -> Transport:
    config = resolve_config(
        token="sk-fuzz",
        org_id=1,
        base_url="https://api.example.test",
        timeout=None,
        max_retries=0,
        rate_limit_backend=None,
        allow_insecure_http=False,
    )
    return Transport(config, RateLimits.disabled())


TRANSPORT = _transport()


def parse(case: Case, body: bytes) -> Any:
    """What the client does with a 2xx body: decode, then structure into the table's type."""
    return TRANSPORT._parse(case.endpoint, URL, _Answer(200, {}, body))


def _schema_name(schema: dict[str, Any]) -> str | None:
    title = schema.get("title")
    return title if isinstance(title, str) else None


# --- checks on parsed values ----------------------------------------------------------
def assert_faithful(value: Any, data: Any) -> None:
    """The model holds exactly what the JSON said, for every field the model knows."""
    if attrs.has(type(value)):
        assert isinstance(data, dict)
        fields = [f for f in attrs.fields(type(value)) if f.name != "_model_extra"]
        wires = {f.alias if f.name.startswith("_") else f.name for f in fields}
        wires.discard("received_at")  # stamped on arrival, never read from the wire
        # Unknown keys are kept as they came, under their wire names.
        assert value.model_extra == {k: v for k, v in data.items() if k not in wires}
        for field in fields:
            wire = field.alias if field.name.startswith("_") else field.name
            got = getattr(value, field.name)
            if wire in data:
                assert_faithful(got, data[wire])
            else:
                assert field.default is not attrs.NOTHING, f"{wire} was required"
                if not isinstance(field.default, attrs.Factory):
                    assert got == field.default
    elif isinstance(value, RunStatus):
        assert value.raw == data
    elif isinstance(value, Enum):
        assert value.value == data
    elif isinstance(value, list):
        assert isinstance(data, list) and len(value) == len(data)
        for item, raw in zip(value, data, strict=True):
            assert_faithful(item, raw)
    elif isinstance(value, dict):
        assert value == data  # free JSON objects are kept whole, unknown keys included
    else:
        assert type(value) is type(data) and value == data


def touch(value: Any) -> None:
    """Every property and the repr of every model in the tree work on any valid answer."""
    if isinstance(value, list):
        for item in value:
            touch(item)
        return
    if not attrs.has(type(value)):
        return
    repr(value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in dir(type(value)):
            if isinstance(getattr(type(value), name, None), property):
                getattr(value, name)
    for field in attrs.fields(type(value)):
        touch(getattr(value, field.name))


# --- mutations that break the schema ----------------------------------------------------
_SAMPLES: dict[str, Any] = {
    "string": "12",
    "integer": 12,
    "number": 1.5,
    "boolean": True,
    "null": None,
    "array": [],
    "object": {},
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a schema allows (empty: anything)."""
    found: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(declared)
    for branch in schema.get("anyOf", []):
        sub = _types(branch)
        if not sub:
            return set()
        found |= sub
    return found


def _branch(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """The ``anyOf`` branch that ``value`` was generated from."""
    kind = _json_type(value)
    for branch in schema.get("anyOf", []):
        if kind in _types(branch):
            return branch
    return schema


@attrs.frozen
class Mutation:
    """Break the answer at one place; ``path`` is how the error must name it."""

    path: str
    steps: tuple[str | int, ...]
    action: str  # "drop" or "retype"
    replacement: Any = None

    def apply(self, document: Any) -> Any:
        copy = json.loads(json.dumps(document))
        if not self.steps:
            return self.replacement
        parent = copy
        for step in self.steps[:-1]:
            parent = parent[step]
        if self.action == "drop":
            del parent[self.steps[-1]]
        else:
            parent[self.steps[-1]] = self.replacement
        return copy


def mutations(
    value: Any, schema: dict[str, Any], path: str = "$", steps: tuple[str | int, ...] = ()
) -> Iterator[Mutation]:
    """Every single-place change that makes ``value`` invalid against ``schema``."""
    allowed = _types(schema)
    if allowed:
        for kind, sample in _SAMPLES.items():
            if kind not in allowed and not (kind == "integer" and "number" in allowed):
                yield Mutation(path, steps, "retype", sample)
    schema = _branch(schema, value)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key in value and (_schema_name(schema), key) not in TOLERATED_MISSING:
                yield Mutation(f"{path}.{key}", (*steps, key), "drop")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                yield from mutations(item, properties[key], f"{path}.{key}", (*steps, key))
            elif not properties and isinstance(extra, dict):
                yield from mutations(item, extra, f"{path}[{key!r}]", (*steps, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from mutations(item, schema["items"], f"{path}[{index}]", (*steps, index))


# --- the table of documented responses is complete ------------------------------------
def test_every_operation_has_a_documented_success_schema() -> None:
    assert {c.endpoint.name for c in SUCCESS} == set(ENDPOINTS)
    assert len(SUCCESS) == len(ENDPOINTS) == 25
    # Every documented error body is fuzzed too: 429, 402, 403, 404 and 422 variants.
    assert {c.status for c in ERRORS} == {402, 403, 404, 422, 429}
    assert len(ERRORS) >= 60


def test_schemas_are_fully_resolved() -> None:
    assert "$ref" not in json.dumps([c.schema for c in CASES])


def test_every_documented_response_is_fuzzed() -> None:
    """Operations that share a schema and a response type are fuzzed once for all."""
    for case in SUCCESS:
        assert any(
            f.schema == case.schema and f.endpoint.response == case.endpoint.response
            for f in FUZZED_SUCCESS
        ), case.id
    for case in ERRORS:
        assert any(f.schema == case.schema and f.status == case.status for f in FUZZED_ERRORS)
    assert len(FUZZED_SUCCESS) >= 15 and len(FUZZED_ERRORS) >= 6


# --- valid answers parse, faithfully ------------------------------------------------------
@pytest.mark.parametrize("case", FUZZED_SUCCESS, ids=[c.id for c in FUZZED_SUCCESS])
def test_every_valid_answer_parses(case: Case) -> None:
    validator = Draft202012Validator(case.schema)

    @FUZZ
    @given(from_schema(bounded(case.schema)))
    def check(document: Any) -> None:
        validator.validate(document)
        COUNTS["valid"] += 1
        value = parse(case, json.dumps(document).encode())
        if case.endpoint.response is Any:
            assert value == document
        else:
            assert_faithful(value, document)
            touch(value)

    check()


# --- invalid answers give a typed error that names the field -------------------------
@pytest.mark.parametrize("case", TYPED, ids=[c.id for c in TYPED])
def test_every_schema_violation_names_the_field(case: Case) -> None:
    validator = Draft202012Validator(case.schema)

    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        document = data.draw(from_schema(bounded(case.schema)), label="valid answer")
        mutation = data.draw(st.sampled_from(list(mutations(document, case.schema))))
        broken = mutation.apply(document)
        assert not validator.is_valid(broken), "the mutation must break the schema"
        COUNTS["invalid"] += 1
        with pytest.raises(APIResponseValidationError) as info:
            parse(case, json.dumps(broken).encode())
        assert info.value.path == mutation.path
        assert mutation.path in str(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__

    check()


def test_mutations_reach_nested_fields() -> None:
    """The mutation generator itself reaches into pages, lists, and maps."""
    page = {
        "items": [{"id": 1, "organization_id": 2, "github_pull_requests": [{"id": 3}]}],
        "total": 1,
        "page": 1,
        "size": 1,
        "pages": 1,
    }
    schema = next(c.schema for c in SUCCESS if c.endpoint.name == "list_runs")
    paths = {m.path for m in mutations(page, schema)}
    assert {"$", "$.items", "$.items[0]", "$.items[0].id", "$.total"} <= paths
    assert "$.items[0].github_pull_requests[0].id" in paths
    settings_schema = next(
        c.schema for c in SUCCESS if c.endpoint.name == "get_check_suite_settings"
    )
    doc = {
        "check_retry_count": 1,
        "ignored_checks": [],
        "check_retry_counts": {"lint": 2},
        "custom_prompts": {},
        "high_priority_apps": [],
        "available_check_suite_names": [],
    }
    assert "$.check_retry_counts['lint']" in {m.path for m in mutations(doc, settings_schema)}


# Shapes that slipped through before the converter checked containers (regression tests).
@pytest.mark.parametrize(
    ("name", "document", "path"),
    [
        ("get_check_suite_settings", {"check_retry_count": 1, "ignored_checks": "abc",
         "check_retry_counts": {}, "custom_prompts": {}, "high_priority_apps": [],
         "available_check_suite_names": []}, "$.ignored_checks"),
        ("get_run", {"id": 1, "organization_id": 2, "github_pull_requests": {}},
         "$.github_pull_requests"),
        ("get_organizations", {"items": [{"id": 1, "name": "a", "settings": []}], "total": 1,
         "page": 1, "size": 1, "pages": 1}, "$.items[0].settings"),
        ("get_users", {"items": {"id": 1}, "total": 1, "page": 1, "size": 1, "pages": 1},
         "$.items"),
        ("get_mcp_providers", {"id": 1}, "$"),
        ("get_current_user", None, "$"),
        ("get_current_user", ["id", "github_user_id", "github_username"], "$"),
        ("get_current_user", {"id": 1, "github_user_id": "1", "github_username": "a",
         "is_admin": "yes"}, "$.is_admin"),
        ("update_check_suite_settings", [["a", 1]], "$"),
    ],
)  # fmt: skip
def test_wrong_containers_are_refused(name: str, document: Any, path: str) -> None:
    case = next(c for c in SUCCESS if c.endpoint.name == name)
    with pytest.raises(APIResponseValidationError) as info:
        parse(case, json.dumps(document).encode())
    assert info.value.path == path


# --- anything at all: a typed answer or a typed error, nothing else ----------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("case", TYPED, ids=[c.id for c in TYPED])
def test_arbitrary_json_gives_a_model_or_a_typed_error(case: Case) -> None:
    @FUZZ
    @given(JSON_VALUES | st.binary(max_size=64).map(lambda b: {"__raw__": b.hex()}))
    def check(document: Any) -> None:
        COUNTS["arbitrary"] += 1
        path = "$"
        try:
            parse(case, json.dumps(document).encode())
        except APIResponseValidationError as exc:
            path = exc.path or "$"
        assert path.startswith("$")

    check()


@FUZZ
@given(st.binary(max_size=256))
def test_arbitrary_bytes_give_a_model_or_a_typed_error(raw: bytes) -> None:
    COUNTS["arbitrary"] += 1
    for case in TYPED[:3]:
        with contextlib.suppress(APIResponseValidationError):
            parse(case, raw)


def test_deeply_nested_json_is_a_typed_error() -> None:
    """A body nested deeper than the JSON decoder's recursion limit (regression test)."""
    case = next(c for c in SUCCESS if c.endpoint.name == "get_run")
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(APIResponseValidationError, match="not JSON"):
        parse(case, body)
    error = build_status_error("GET", URL, 500, {}, body)
    assert error.status_code == 500


def test_structure_only_raises_response_shape_errors() -> None:
    paths = []
    for value in (None, 1, "x", [], {}, [{}], {"id": None}):
        for case in TYPED:
            try:
                structure(value, case.endpoint.response)
            except ResponseShapeError as exc:
                paths.append(exc.path)
    assert paths and all(p is not None and p.startswith("$") for p in paths)


# --- documented error bodies become the typed error of their status ----------------------
@pytest.mark.parametrize("case", FUZZED_ERRORS, ids=[c.id for c in FUZZED_ERRORS])
def test_documented_error_bodies_become_typed_errors(case: Case) -> None:
    @FUZZ
    @given(from_schema(bounded(case.schema)))
    def check(document: Any) -> None:
        COUNTS["error_bodies"] += 1
        error = build_status_error(
            case.endpoint.method, URL, case.status, {}, json.dumps(document).encode()
        )
        assert type(error) is error_class_for(case.status)
        assert error.status_code == case.status
        assert error.body == document
        message = document.get("message") if isinstance(document, dict) else None
        if isinstance(message, str) and message:
            assert error.message == message
        assert error.message, "an error always says something"
        if isinstance(error, UnprocessableEntityError):
            detail = document.get("detail", [])
            assert len(error.errors) == len([d for d in detail if isinstance(d, dict)])
        str(error), repr(error)

    check()


@FUZZ
@given(
    st.integers(400, 599),
    st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
)
def test_any_error_body_gives_a_typed_error(status: int, raw: bytes) -> None:
    COUNTS["error_bodies"] += 1
    error = build_status_error("GET", URL, status, {}, raw)
    assert isinstance(error, APIStatusError)
    assert error.status_code == status and error.message
    str(error)


# --- Retry-After from any server: never negative, never NaN, never more than the cap ---------
@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["Retry-After", "retry-after", "retry-after-ms"]),
        st.text(max_size=40)
        | st.sampled_from(["nan", "-nan", "inf", "-inf", "1e400", "NaN", " 5 ", "-3"])
        | st.floats().map(str)
        | st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    )
)
def test_retry_after_is_always_a_sane_delay(headers: dict[str, str]) -> None:
    COUNTS["headers"] += 1
    delay = parse_retry_after(headers)
    if delay is not None:
        assert math.isfinite(delay) and 0.0 <= delay <= MAX_RETRY_AFTER
        assert math.isfinite(backoff_delay(3, retry_after=delay))


@pytest.mark.parametrize("raw", ["nan", "NaN", "-nan", "inf", "-inf"])
def test_retry_after_ms_nan_and_infinity(raw: str) -> None:
    """``retry-after-ms: nan`` gave a NaN delay (regression test)."""
    delay = parse_retry_after({"retry-after-ms": raw})
    assert delay is None or (math.isfinite(delay) and 0 <= delay <= MAX_RETRY_AFTER)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    target = os.environ.get("CODEGEN_FUZZ_REPORT")
    if target:
        Path(target).write_text(json.dumps({"examples_per_schema": EXAMPLES, **COUNTS}))


@pytest.mark.parametrize("minutes", [10**20, -(10**20), 2**40, -(2**40)])
def test_absurd_slack_token_lifetime_does_not_overflow(minutes: int) -> None:
    """``expires_at`` raised ``OverflowError`` for a huge lifetime (regression test)."""
    case = next(c for c in SUCCESS if c.endpoint.name == "generate_slack_connect_token")
    document = {"token": "t", "message": "m", "expires_in_minutes": minutes}
    token = parse(case, json.dumps(document).encode())
    assert token.expires_at.tzinfo is not None
    assert token.is_expired is (minutes < 0)
