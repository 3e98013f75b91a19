"""The admin routes under ``/_emulator/``: stats, runs, faults, tokens, the Slack bot."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._errors import ApiError, error_body
from ._responses import json_response
from ._runtime import Runtime, inject_fault

__all__ = ["add_admin_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
            return json_response(exc.status, exc.body)
        except (ValueError, TypeError) as exc:
            return json_response(422, error_body(422, str(exc)))
        return json_response(200, payload)

    return handle


def add_admin_routes(rt: Runtime, app: web.Application) -> None:
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

    async def set_extra_fields(request: web.Request) -> Any:
        body = await _json_body(request)
        fields = body.get("fields")
        if set(body) != {"fields"} or not isinstance(fields, dict):
            raise ApiError(422, 'expected {"fields": {name: value, ...}}')
        rt.extra_fields = dict(fields)
        return {"fields": rt.extra_fields}

    async def clear_extra_fields(_: web.Request) -> Any:
        rt.extra_fields = {}
        return {"fields": {}}

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
    router.add_put("/_emulator/extra-fields", _admin(set_extra_fields))
    router.add_delete("/_emulator/extra-fields", _admin(clear_extra_fields))
