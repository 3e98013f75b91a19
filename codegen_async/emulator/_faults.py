"""Fault injection: make the next N requests of an operation misbehave on purpose.

Kinds:

- ``status``: an error status with the spec's error body (and ``Retry-After`` if given).
- ``hang``: wait ``delay`` seconds, then answer normally (to trip client timeouts).
- ``drop_before_action``: read the request, then close the connection without acting.
- ``drop_after_action``: act (e.g. create the run), then close the connection unanswered.
- ``truncate``: promise more bytes in ``Content-Length`` than are sent, then close.
- ``non_json``: 200 with a ``text/plain`` body that is not JSON.
- ``html``: an error status (502 unless given) with a proxy's HTML page.
- ``wrong_shape``: act, then answer 200 JSON that violates the response schema.

:func:`apply` answers a request as its fault says; each kind is one small function, in one
of two tables: the kinds that answer *instead of* the operation, and the kinds that let it
act and then spoil its answer (``hang`` only delays it). The request handler knows nothing
of the kinds.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, get_args

import attrs
from aiohttp import web

from . import _errors
from ._responses import Reply, reply
from ._stats import Stats

__all__ = ["FAULT_KINDS", "Fault", "FaultBook", "FaultKind", "apply"]

Response = web.StreamResponse

FaultKind = Literal[
    "status",
    "hang",
    "drop_before_action",
    "drop_after_action",
    "truncate",
    "non_json",
    "html",
    "wrong_shape",
]
FAULT_KINDS: Final[frozenset[str]] = frozenset(get_args(FaultKind))
DEFAULT_HANG: Final = 60.0

_MESSAGES: Final = {
    400: "Bad request",
    401: _errors.NOT_AUTHENTICATED,
    402: _errors.PLAN_LIMIT,
    403: _errors.NO_ACCESS,
    404: "Not found",
    408: "Request timeout",
    409: "Conflict",
    429: _errors.RATE_LIMITED,
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
_NOT_FOUND: Final = {
    "get_run": _errors.RUN_NOT_FOUND,
    "resume_run": _errors.RUN_NOT_FOUND,
    "ban_all_checks": _errors.RUN_NOT_FOUND,
    "unban_all_checks": _errors.RUN_NOT_FOUND,
    "remove_from_pr": _errors.RUN_NOT_FOUND,
    "get_run_logs": _errors.RUN_NOT_FOUND,
    "get_user": _errors.USER_NOT_FOUND,
    "run": _errors.NO_REPOS,
    "analyze_sandbox_logs": _errors.SANDBOX_NOT_FOUND,
    "generate_setup_commands": _errors.REPO_NOT_FOUND,
}
_HTML: Final = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@attrs.define
class Fault:
    """One injected fault and how many more requests it will affect."""

    operation: str
    kind: FaultKind
    remaining: int
    status: int
    retry_after: float | str | None = None
    delay: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


class FaultBook:
    """The pending faults, by operation name (``"*"`` matches every operation)."""

    __slots__ = ("_pending", "active", "triggered")

    def __init__(self) -> None:
        self._pending: dict[str, deque[Fault]] = {}
        self.active = False
        self.triggered: dict[str, int] = {}

    def add(
        self,
        operation: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r}; one of {', '.join(sorted(FAULT_KINDS))}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        if status is None:
            status = 502 if kind == "html" else 500
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status!r}")
        if delay is not None and delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay!r}")
        fault = Fault(operation, kind, count, status, retry_after, delay)  # type: ignore[arg-type]
        self._pending.setdefault(operation, deque()).append(fault)
        self.active = True
        return fault

    def take(self, operation: str) -> Fault | None:
        """The fault to apply to this request of ``operation``, if any (uses one up)."""
        for key in (operation, "*"):
            queue = self._pending.get(key)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.popleft()
                    if not queue:
                        del self._pending[key]
                        self.active = bool(self._pending)
                self.triggered[fault.kind] = self.triggered.get(fault.kind, 0) + 1
                return fault
        return None

    def clear(self, operation: str | None = None) -> None:
        """Drop pending faults: of one operation, or all."""
        if operation is None:
            self._pending.clear()
        else:
            self._pending.pop(operation, None)
        self.active = bool(self._pending)

    def pending(self) -> list[dict[str, Any]]:
        return [fault.as_dict() for queue in self._pending.values() for fault in queue]


def format_header_seconds(value: float | str) -> str:
    """A ``Retry-After`` value: an HTTP-date string as is, seconds as a short number."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def _status_reply(operation: str, fault: Fault) -> Reply:
    """Status, body and headers of a ``status`` fault."""
    status = fault.status
    message = (
        _NOT_FOUND.get(operation, _MESSAGES[404])
        if status == 404
        else _MESSAGES.get(status, "Injected fault")
    )
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = format_header_seconds(fault.retry_after)
    if status == 422:
        body: Any = {
            "detail": [
                {"type": "value_error", "loc": ["body"], "msg": "Injected fault", "input": None}
            ]
        }
    else:
        body = _errors.error_body(status, message)
    return status, body, headers


def _drop(request: web.Request, stats: Stats) -> web.Response:
    """Close the connection; the response returned is never sent."""
    stats.connection_dropped()
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=200)


# --- the kinds that answer instead of the operation -------------------------------------
async def _status(fault: Fault, operation: str, request: web.Request, stats: Stats) -> Response:
    return reply(stats, *_status_reply(operation, fault))


async def _html(fault: Fault, operation: str, request: web.Request, stats: Stats) -> Response:
    stats.answered(fault.status)
    reason = _MESSAGES.get(fault.status, "Error").capitalize()
    return web.Response(
        status=fault.status,
        text=_HTML.format(status=fault.status, reason=reason.title()),
        content_type="text/html",
    )


async def _non_json(fault: Fault, operation: str, request: web.Request, stats: Stats) -> Response:
    stats.answered(200)
    return web.Response(
        status=200,
        text="upstream connect error or disconnect/reset before headers. reset reason: overflow",
        content_type="text/plain",
    )


async def _drop_before_action(
    fault: Fault, operation: str, request: web.Request, stats: Stats
) -> Response:
    await request.read()
    return _drop(request, stats)


# --- the kinds that let the operation act, then spoil its answer ------------------------
async def _drop_after_action(request: web.Request, stats: Stats, answer: Reply) -> Response:
    return _drop(request, stats)


async def _truncate(request: web.Request, stats: Stats, answer: Reply) -> Response:
    """Send half of the body under a ``Content-Length`` that promises all of it, then close."""
    status, payload, _ = answer
    stats.answered(status)
    body = json.dumps(payload).encode()
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    response.content_length = len(body) + 64
    await response.prepare(request)
    await response.write(body[: max(len(body) // 2, 1)])
    transport = request.transport
    if transport is not None:
        transport.close()
    return response


async def _wrong_shape(request: web.Request, stats: Stats, answer: Reply) -> Response:
    status, payload, headers = answer
    if status == 200:
        payload = corrupt(payload)
    return reply(stats, status, payload, headers)


_INSTEAD: Final[dict[str, Callable[[Fault, str, web.Request, Stats], Awaitable[Response]]]] = {
    "status": _status,
    "html": _html,
    "non_json": _non_json,
    "drop_before_action": _drop_before_action,
}
_AFTER: Final[dict[str, Callable[[web.Request, Stats, Reply], Awaitable[Response]]]] = {
    "drop_after_action": _drop_after_action,
    "truncate": _truncate,
    "wrong_shape": _wrong_shape,
}


async def apply(
    fault: Fault,
    operation: str,
    request: web.Request,
    process: Callable[[web.Request], Awaitable[Reply]],
    stats: Stats,
) -> Response:
    """Answer a request of ``operation`` as ``fault`` says.

    ``process`` is the normal pipeline (auth, quota, validation, the operation); the kinds in
    ``_INSTEAD`` never call it, ``hang`` delays it, those in ``_AFTER`` spoil what it answers.
    """
    kind = fault.kind
    instead = _INSTEAD.get(kind)
    if instead is not None:
        return await instead(fault, operation, request, stats)
    if kind == "hang":
        await asyncio.sleep(DEFAULT_HANG if fault.delay is None else fault.delay)
    answer = await process(request)
    after = _AFTER.get(kind)
    if after is not None:
        return await after(request, stats, answer)
    return reply(stats, *answer)


_CORRUPT_KEYS: Final = (
    "id",
    "agent_run_id",
    "total",
    "organization_id",
    "success",
    "token",
    "check_retry_count",
    "organization_rules",
)


def corrupt(payload: Any) -> Any:
    """The same answer with one field of the wrong type (``id`` as a string, ...)."""
    if isinstance(payload, list):
        if payload:
            return [corrupt(payload[0]), *payload[1:]]
        return {"unexpected": "an object where a list belongs"}
    if isinstance(payload, dict):
        for key in _CORRUPT_KEYS:
            if key in payload:
                value = payload[key]
                if isinstance(value, bool):
                    wrong: Any = "yes" if value else "no"
                elif isinstance(value, int):
                    wrong = str(value)
                elif isinstance(value, str):
                    wrong = 12345
                else:
                    wrong = 12345
                return {**payload, key: wrong}
        return {**payload, "items": "not-a-list"} if "items" in payload else [payload]
    return {"unexpected": payload}
