"""``ApiHandler``: the request pipeline of one API operation, one concern per method.

fault injection (``_faults.apply``) -> bearer auth (401) -> server-side quota (429) ->
validation (422) -> the operation (403/404/400/402 or its result) -> JSON built from the
SDK's models. Counting (``Stats``) wraps it all. Everything a request needs is bound once per
route when the app is built, so the hot path reads attributes and calls a few functions.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import attrs
from aiohttp import web

from .._converter import unstructure
from .._endpoints import Endpoint
from . import _faults
from ._errors import NOT_AUTHENTICATED, RATE_LIMITED, ApiError, error_body
from ._operations import Call, Operation
from ._quota import format_retry_after
from ._responses import Reply, reply
from ._runtime import Runtime
from ._validate import RequestValidator

__all__ = ["ApiHandler", "with_extra_fields"]

_UNAUTHORIZED: Final = error_body(401, NOT_AUTHENTICATED)
_TOO_MANY: Final = error_body(429, RATE_LIMITED)
_WWW_AUTH: Final = {"WWW-Authenticate": 'Bearer realm="codegen"'}


class ApiHandler:
    """Answers the requests of one operation; :meth:`handle` is the aiohttp handler."""

    __slots__ = (
        "_creates_run",
        "_name",
        "_operation",
        "_quota",
        "_route",
        "_rt",
        "_validator",
    )

    def __init__(self, rt: Runtime, endpoint: Endpoint, operation: Operation) -> None:
        self._rt = rt
        self._name = endpoint.name
        self._route = endpoint.route
        self._quota = endpoint.quota
        self._creates_run = endpoint.creates_run
        self._validator = RequestValidator(endpoint)
        self._operation = operation

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Count the request, apply a pending fault if any, else answer it normally."""
        rt = self._rt
        stats = rt.stats
        task = asyncio.current_task()
        if task is not None:
            rt.handlers.add(task)
        stats.request_started(self._route)
        try:
            fault = rt.faults.take(self._name) if rt.faults.active else None
            if fault is None:
                return reply(stats, *await self.process(request))
            return await _faults.apply(fault, self._name, request, self.process, stats)
        finally:
            stats.request_ended()
            rt.handlers.discard(task)

    async def process(self, request: web.Request) -> Reply:
        """The normal pipeline: auth, quota, validation, the operation."""
        caller = self.authenticate(request)
        if caller is None:
            return 401, _UNAUTHORIZED, {**_WWW_AUTH, "X-Request-Id": self._rt.request_id()}
        token, user_id = caller
        refusal = self.check_quota(token)
        if refusal is not None:
            return refusal
        raw = await request.read() if self._validator.has_body else None
        values, errors = self._validator.validate(request.match_info, request.query, raw)
        if errors:
            return 422, {"detail": errors}, {"X-Request-Id": self._rt.request_id()}
        return self.dispatch(user_id, values)

    def authenticate(self, request: web.Request) -> tuple[str, int] | None:
        """The bearer token and the id of the user it belongs to, or None (401)."""
        header = request.headers.get("Authorization")
        if header is None or header[:7].lower() != "bearer ":
            return None
        token = header[7:].strip()
        user_id = self._rt.state.tokens.get(token)
        return None if user_id is None else (token, user_id)

    def check_quota(self, token: str) -> Reply | None:
        """The 429 answer when the token's quota on this route is used up, else None."""
        rt = self._rt
        limiter = rt.limiter
        if not limiter.enabled:
            return None
        wait = limiter.hit(token, self._route, self._quota)
        if wait is None:
            return None
        rt.stats.refused(self._route)
        headers = {
            "Retry-After": format_retry_after(wait, rt.time_scale),
            "X-Request-Id": rt.request_id(),
        }
        return 429, _TOO_MANY, headers

    def dispatch(self, user_id: int, values: dict[str, Any]) -> Reply:
        """Run the operation on the state; its result as JSON, or its error answer."""
        rt = self._rt
        try:
            result = self._operation(rt.state, Call(user_id, values, time.time()))
        except ApiError as exc:
            headers = {"X-Request-Id": rt.request_id()}
            if exc.headers:
                headers.update(exc.headers)
            return exc.status, exc.body, headers
        if self._creates_run:
            rt.stats.run_created(self._name)
        payload = unstructure(result)
        if rt.extra_fields:
            with_extra_fields(result, payload, rt.extra_fields)
        return 200, payload, {"X-Request-Id": rt.request_id()}  # as the real API does


def with_extra_fields(model: Any, payload: Any, extra: dict[str, Any]) -> None:
    """Add ``extra`` to the JSON object of ``model`` and of every model inside it.

    Walks the model beside its JSON so that free-form objects (``metadata``) stay as sent.
    """
    if not attrs.has(type(model)) or not isinstance(payload, dict):
        return
    for key, value in extra.items():
        payload.setdefault(key, value)
    for field in attrs.fields(type(model)):
        value = getattr(model, field.name)
        wire = payload.get(field.name)
        if attrs.has(type(value)):
            with_extra_fields(value, wire, extra)
        elif isinstance(value, list) and isinstance(wire, list):
            for item, item_wire in zip(value, wire, strict=False):
                with_extra_fields(item, item_wire, extra)
