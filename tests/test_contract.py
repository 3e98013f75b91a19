"""The public surface of shared/CONTRACT.md: names, signatures, and the endpoint table."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

import codegen_async
from codegen_async import ENDPOINTS, AsyncAgent, CodegenError
from codegen_async import errors as errors_module

SPEC = Path(__file__).parent / "data" / "codegen-openapi3.json"


def test_all_lists_exactly_the_public_names() -> None:
    public = {n for n in dir(codegen_async) if not n.startswith("_")}
    modules = {"errors", "models", "emulator", "cli", "annotations"}
    assert set(codegen_async.__all__) - {"__version__"} == public - modules
    for name in codegen_async.__all__:
        assert getattr(codegen_async, name) is not None


def test_every_operation_has_a_client_method() -> None:
    for name in ENDPOINTS:
        method = getattr(AsyncAgent, name, None)
        assert method is not None, f"AsyncAgent has no method for {name}"
        assert inspect.iscoroutinefunction(method), name
        assert method.__doc__, f"{name} has no docstring"


def test_the_table_matches_the_openapi_description() -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is missing")
    spec = json.loads(SPEC.read_text())
    operations = {
        (method.upper(), path): op
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    table = {(e.method, e.path): e for e in ENDPOINTS.values()}
    assert set(table) == set(operations)
    assert len(ENDPOINTS) == 25
    for key, endpoint in table.items():
        op = operations[key]
        assert endpoint.operation_id == op["operationId"]
        spec_params = {
            p["name"]: p for p in op.get("parameters", []) if p["in"] in ("path", "query")
        }
        # The description forgets {org_id} on the check-suite paths; the template has it.
        in_template = set(re.findall(r"{(\w+)}", endpoint.path))
        assert {p.name for p in endpoint.params} == set(spec_params) | in_template, key
        for param in endpoint.params:
            if param.name not in spec_params:
                assert param.location == "path"
                continue
            schema = spec_params[param.name]["schema"]
            assert param.location == spec_params[param.name]["in"]
            assert param.minimum == schema.get("minimum"), (key, param.name)
            assert param.maximum == schema.get("maximum"), (key, param.name)
        body = op.get("requestBody")
        if body is None:
            assert endpoint.body is None, key
        else:
            ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            schema = spec["components"]["schemas"][ref]
            assert endpoint.body is not None and endpoint.body.schema == ref
            assert set(endpoint.body.fields) == set(schema["properties"]), key
            assert set(endpoint.body.required) == set(schema.get("required", [])), key
        # A documented quota in the description must be the table's.
        desc = op.get("description", "")
        if "Rate limit:" in desc:
            text = desc.split("Rate limit:", 1)[1].strip().split(".")[0]
            count, _, rest = text.partition(" requests per ")
            window = {"minute": 60.0, "30 seconds": 30.0, "60 seconds": 60.0}[rest.strip()]
            assert (endpoint.quota.limit, endpoint.quota.window) == (int(count), window), key


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("run", ["prompt", "repo_id", "metadata", "images", "model", "agent_type"]),
        ("get_run", ["agent_run_id"]),
        ("analyze_sandbox_logs", ["sandbox_id"]),
        ("generate_setup_commands", ["repo_id", "prompt", "trigger_source"]),
        ("generate_slack_connect_token", ["org_id"]),
        ("get_current_user", []),
        ("get_user", ["user_id", "org_id"]),
        ("get_users", ["org_id", "skip", "limit"]),
    ],
)
def test_documented_method_signatures(name: str, params: list[str]) -> None:
    sig = inspect.signature(getattr(AsyncAgent, name))
    names = [p for p in sig.parameters if p != "self"]
    assert names[: len(params)] == params or set(params) <= set(names), names
    for p in params:
        assert p in sig.parameters
    defaults = {
        "run": {"repo_id": None, "metadata": None, "images": None, "model": None,
                "agent_type": None},
        "generate_setup_commands": {"prompt": None, "trigger_source": "setup-commands"},
        "generate_slack_connect_token": {"org_id": None},
        "get_user": {"org_id": None},
        "get_users": {"org_id": None, "skip": 0, "limit": 100},
    }.get(name, {})  # fmt: skip
    for p, default in defaults.items():
        assert sig.parameters[p].default == default, (name, p)


def test_error_classes_per_documented_status() -> None:
    expected = {
        400: "BadRequestError",
        401: "AuthenticationError",
        402: "PaymentRequiredError",
        403: "PermissionDeniedError",
        404: "NotFoundError",
        422: "UnprocessableEntityError",
        429: "RateLimitError",
        500: "InternalServerError",
        503: "InternalServerError",
    }
    for status, name in expected.items():
        cls = errors_module.error_class_for(status)
        assert cls.__name__ == name
        assert issubclass(cls, CodegenError)
        assert getattr(codegen_async, name) is cls
    assert issubclass(codegen_async.APITimeoutError, TimeoutError)
    assert issubclass(codegen_async.APIConnectionError, ConnectionError)
    assert issubclass(codegen_async.WaitTimeoutError, TimeoutError)


def test_rate_limits_documented_scale() -> None:
    limits = codegen_async.RateLimits.documented(scale=0.5)
    assert limits.for_endpoint(ENDPOINTS["analyze_sandbox_logs"]) == codegen_async.Quota(5, 30.0)
    assert limits.for_endpoint(ENDPOINTS["get_users"]) == codegen_async.Quota(60, 15.0)
    assert limits.for_endpoint(ENDPOINTS["run"]) == codegen_async.Quota(10, 30.0)
