"""The aiohttp application: API routes registered from the endpoint table, plus admin routes.

Every API request goes through the same short pipeline, compiled once per route:
fault injection -> bearer auth (401) -> server-side quota (429) -> validation (422) ->
the operation (403/404/400/402 or its result) -> JSON built from the SDK's models.
Nothing here blocks, sleeps (except an injected ``hang``) or creates tasks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from aiohttp import web

from .._converter import unstructure
from .._endpoints import ENDPOINTS, Endpoint
from . import _faults
from ._errors import NOT_AUTHENTICATED, RATE_LIMITED, ApiError, error_body
from ._faults import AFTER_ACTION, DEFAULT_HANG, FaultBook
from ._operations import OPERATIONS, Call, Operation
from ._quota import ServerRateLimiter, format_retry_after
from ._state import EmulatorState
from ._stats import Stats
from ._validate import RequestValidator

__all__ = ["Runtime", "build_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Reply = tuple[int, Any, Mapping[str, str] | None]

_JSON: Final = "application/json"
_UNAUTHORIZED: Final = error_body(401, NOT_AUTHENTICATED)
_TOO_MANY: Final = error_body(429, RATE_LIMITED)
_WWW_AUTH: Final = {"WWW-Authenticate": 'Bearer realm="codegen"'}


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON.

    A lone surrogate (``"\\ud800"`` is valid JSON, so a request can carry one, and a 422
    echoes its input) cannot be encoded as UTF-8; ``backslashreplace`` writes it back as
    the same ``\\ud800`` escape, inside its JSON string, instead of failing with a 500.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "backslashreplace"
    )


class Runtime:
    """Everything the handlers share: state, counters, pending faults, quota counters."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        rate_limit: str,
        time_scale: float,
    ) -> None:
        self.state = state
        self.time_scale = time_scale
        self.stats = Stats(e.route for e in ENDPOINTS.values())
        self.faults = FaultBook()
        self.limiter = ServerRateLimiter(rate_limit, time_scale)  # type: ignore[arg-type]
        self._request_ids = itertools.count(1)

    def request_id(self) -> str:
        return f"req_emu_{next(self._request_ids):08d}"

    # --- admin operations (also the Python API of Emulator) ---------------------------
    def stats_snapshot(self) -> dict[str, Any]:
        now = time.time()
        data = self.stats.snapshot()
        data["runs"] = {"total": len(self.state.runs), **self.state.run_counts(now)}
        data["faults_triggered"] = dict(self.faults.triggered)
        data["faults_pending"] = self.faults.pending()
        data["config"] = {
            "time_scale": self.time_scale,
            "rate_limit": self.limiter.mode,
            "status_style": self.state.config.status_style,
            "run_duration": list(self.state.config.run_duration),
            "failure_rate": self.state.config.failure_rate,
            "max_runs": self.state.config.max_runs,
            "seed": self.state.seed,
        }
        return data

    def reset_stats(self) -> None:
        self.stats.reset()
        self.faults.triggered.clear()

    def info(self) -> dict[str, Any]:
        """The ids of the seeded world (no tokens)."""
        state = self.state
        return {
            "org_id": state.primary_org_id,
            "user_id": state.primary_user_id,
            "member_org_ids": [o.id for o in state.orgs_of(state.primary_user_id)],
            "foreign_org_id": state.foreign_org_id,
            "repo_ids": [r.id for r in state.repos_of(state.primary_org_id)],
            "sandboxes": {
                str(box.id): {
                    "organization_id": box.org_id,
                    "repo_id": box.repo_id,
                    "has_logs": bool(box.logs),
                    "error": box.failure.error if box.failure else None,
                }
                for box in state.sandboxes.values()
            },
            "pull_request_ids": sorted(state.pull_requests),
            "operations": {name: e.route for name, e in ENDPOINTS.items()},
        }


def _reply(
    stats: Stats, status: int, payload: Any, headers: Mapping[str, str] | None
) -> web.Response:
    stats.responses[status] = stats.responses.get(status, 0) + 1
    return web.Response(body=dumps(payload), status=status, content_type=_JSON, headers=headers)


def _api_handler(rt: Runtime, endpoint: Endpoint, operation: Operation) -> Handler:
    """The request handler of one operation, with everything it needs bound once."""
    name = endpoint.name
    route = endpoint.route
    quota = endpoint.quota
    creates_run = endpoint.creates_run
    validator = RequestValidator(endpoint)
    has_body = validator.has_body
    state, stats, faults, limiter = rt.state, rt.stats, rt.faults, rt.limiter
    tokens = state.tokens
    requests = stats.requests
    scale = rt.time_scale

    async def process(request: web.Request) -> Reply:
        header = request.headers.get("Authorization")
        user_id = None
        token = ""
        if header is not None and header[:7].lower() == "bearer ":
            token = header[7:].strip()
            user_id = tokens.get(token)
        if user_id is None:
            return 401, _UNAUTHORIZED, {**_WWW_AUTH, "X-Request-Id": rt.request_id()}
        if limiter.enabled:
            wait = limiter.hit(token, route, quota)
            if wait is not None:
                stats.rate_limited += 1
                stats.rate_limited_by_route[route] = stats.rate_limited_by_route.get(route, 0) + 1
                return (
                    429,
                    _TOO_MANY,
                    {
                        "Retry-After": format_retry_after(wait, scale),
                        "X-Request-Id": rt.request_id(),
                    },
                )
        raw = await request.read() if has_body else None
        values, errors = validator.validate(request.match_info, request.query, raw)
        if errors:
            return 422, {"detail": errors}, {"X-Request-Id": rt.request_id()}
        try:
            result = operation(state, Call(user_id, values, time.time()))
        except ApiError as exc:
            headers = {"X-Request-Id": rt.request_id()}
            if exc.headers:
                headers.update(exc.headers)
            return exc.status, exc.body, headers
        if creates_run:
            stats.runs_created[name] = stats.runs_created.get(name, 0) + 1
        return 200, unstructure(result), None

    async def handle(request: web.Request) -> web.StreamResponse:
        requests[route] += 1
        stats.in_flight += 1
        if stats.in_flight > stats.max_in_flight:
            stats.max_in_flight = stats.in_flight
        try:
            fault = faults.take(name) if faults.active else None
            if fault is None:
                status, payload, headers = await process(request)
                return _reply(stats, status, payload, headers)
            kind = fault.kind
            if kind == "status":
                return _reply(stats, *_faults.status_reply(name, fault))
            if kind == "html":
                stats.responses[fault.status] = stats.responses.get(fault.status, 0) + 1
                return _faults.html_response(fault.status)
            if kind == "non_json":
                stats.responses[200] = stats.responses.get(200, 0) + 1
                return _faults.non_json_response()
            if kind == "drop_before_action":
                await request.read()
                stats.dropped += 1
                return _faults.drop(request)
            if kind == "hang":
                await asyncio.sleep(DEFAULT_HANG if fault.delay is None else fault.delay)
            status, payload, headers = await process(request)
            if kind in AFTER_ACTION:
                if kind == "drop_after_action":
                    stats.dropped += 1
                    return _faults.drop(request)
                if kind == "truncate":
                    stats.responses[status] = stats.responses.get(status, 0) + 1
                    return await _faults.truncated(request, status, payload)
                if status == 200:  # wrong_shape
                    payload = _faults.corrupt(payload)
            return _reply(stats, status, payload, headers)
        finally:
            stats.in_flight -= 1

    return handle


def _fallback(patterns: list[tuple[re.Pattern[str], str]], stats: Stats) -> Handler:
    """404 (or 405 with ``Allow``) in FastAPI's words, for paths the API does not have."""

    async def handle(request: web.Request) -> web.StreamResponse:
        stats.unknown_routes += 1
        allowed = sorted({m for rx, m in patterns if rx.fullmatch(request.path)})
        if allowed and request.method not in allowed:
            return _reply(
                stats, 405, {"detail": "Method Not Allowed"}, {"Allow": ", ".join(allowed)}
            )
        return _reply(stats, 404, {"detail": "Not Found"}, None)

    return handle


def _route_regex(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


# --- admin routes --------------------------------------------------------------------------
async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError(422, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(422, "the body must be a JSON object")
    return data


def _admin(fn: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            payload = await fn(request)
        except ApiError as exc:
            return web.Response(body=dumps(exc.body), status=exc.status, content_type=_JSON)
        except (ValueError, TypeError) as exc:
            body = error_body(422, str(exc))
            return web.Response(body=dumps(body), status=422, content_type=_JSON)
        return web.Response(body=dumps(payload), content_type=_JSON)

    return handle


def _admin_routes(rt: Runtime, app: web.Application) -> None:
    state = rt.state

    def run_id(request: web.Request) -> int:
        try:
            return int(request.match_info["agent_run_id"])
        except ValueError:
            raise ApiError(422, "agent_run_id must be an integer") from None

    async def stats(_: web.Request) -> Any:
        return rt.stats_snapshot()

    async def reset_stats(_: web.Request) -> Any:
        rt.reset_stats()
        return {"ok": True}

    async def reset_rate_limits(_: web.Request) -> Any:
        rt.limiter.reset()
        return {"ok": True}

    async def info(_: web.Request) -> Any:
        return rt.info()

    async def get_run(request: web.Request) -> Any:
        try:
            run = state.find_run(run_id(request))
        except KeyError:
            raise ApiError(404, "Agent run not found.") from None
        return state.run_info(run, time.time())

    async def finish_run(request: web.Request) -> Any:
        body = await _json_body(request)
        status = body.get("status", "completed")
        result = body.get("result")
        if not isinstance(status, str) or not (result is None or isinstance(result, str)):
            raise ApiError(422, "status must be a string and result a string or null")
        try:
            run = state.finish_run(run_id(request), status, result)
        except KeyError:
            raise ApiError(404, "Agent run not found.") from None
        return state.run_info(run, time.time())

    async def add_fault(request: web.Request) -> Any:
        body = await _json_body(request)
        unknown = set(body) - {"operation", "kind", "count", "status", "retry_after", "delay"}
        if unknown or "operation" not in body or "kind" not in body:
            raise ApiError(422, "expected operation, kind and optionally count, status, "
                                "retry_after, delay")  # fmt: skip
        fault = inject_fault(rt, **body)
        return {"fault": fault.as_dict(), "pending": rt.faults.pending()}

    async def list_faults(_: web.Request) -> Any:
        return {"pending": rt.faults.pending(), "triggered": dict(rt.faults.triggered)}

    async def clear_faults(request: web.Request) -> Any:
        rt.faults.clear(request.query.get("operation"))
        return {"pending": rt.faults.pending()}

    async def add_token(request: web.Request) -> Any:
        body = await _json_body(request)
        user_id = body.get("user_id", state.primary_user_id)
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id not in state.users:
            raise ApiError(404, "User not found.")
        return {"user_id": user_id, "token": state.add_token(user_id)}

    async def slack_connect(request: web.Request) -> Any:
        body = await _json_body(request)
        token = body.get("token")
        if not isinstance(token, str):
            raise ApiError(422, "token must be a string")
        return state.connect_slack(token, time.time())

    router = app.router
    router.add_get("/_emulator/stats", _admin(stats), allow_head=False)
    router.add_post("/_emulator/reset-stats", _admin(reset_stats))
    router.add_post("/_emulator/reset-rate-limits", _admin(reset_rate_limits))
    router.add_get("/_emulator/info", _admin(info), allow_head=False)
    router.add_get("/_emulator/runs/{agent_run_id}", _admin(get_run), allow_head=False)
    router.add_post("/_emulator/runs/{agent_run_id}/finish", _admin(finish_run))
    router.add_get("/_emulator/faults", _admin(list_faults), allow_head=False)
    router.add_post("/_emulator/faults", _admin(add_fault))
    router.add_delete("/_emulator/faults", _admin(clear_faults))
    router.add_post("/_emulator/tokens", _admin(add_token))
    router.add_post("/_emulator/slack/connect", _admin(slack_connect))


def inject_fault(
    rt: Runtime,
    operation: str,
    kind: str,
    *,
    count: int = 1,
    status: int | None = None,
    retry_after: float | str | None = None,
    delay: float | None = None,
) -> _faults.Fault:
    """Queue a fault for the next ``count`` requests of ``operation`` (or ``"*"``)."""
    if operation != "*" and operation not in ENDPOINTS:
        raise ValueError(f"unknown operation {operation!r}; use a name from ENDPOINTS or '*'")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, (int, float, str))
    ):
        raise TypeError("retry_after must be seconds or an HTTP-date string")
    return rt.faults.add(
        operation, kind, count=count, status=status, retry_after=retry_after, delay=delay
    )


def build_app(rt: Runtime) -> web.Application:
    """The application: one route per row of ``ENDPOINTS``, admin routes, JSON 404/405."""
    missing = set(ENDPOINTS) - set(OPERATIONS)
    if missing:
        raise RuntimeError(f"the emulator has no handler for: {', '.join(sorted(missing))}")
    app = web.Application(client_max_size=16 * 1024**2)
    patterns: list[tuple[re.Pattern[str], str]] = []
    for name, endpoint in ENDPOINTS.items():
        app.router.add_route(
            endpoint.method, endpoint.path, _api_handler(rt, endpoint, OPERATIONS[name])
        )
        patterns.append((_route_regex(endpoint.path), endpoint.method))
    _admin_routes(rt, app)
    app.router.add_route("*", "/{tail:.*}", _fallback(patterns, rt.stats))
    return app
