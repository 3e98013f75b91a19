"""The aiohttp application: API routes registered from the endpoint table, plus admin routes.

Each API route gets its own :class:`~._handler.ApiHandler` (the request pipeline, compiled
once per route); the admin routes live in ``_admin``; every other path answers FastAPI's JSON
404/405. Nothing here blocks, sleeps (except an injected ``hang``) or creates tasks.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from .._endpoints import ENDPOINTS, path_regex
from ._admin import add_admin_routes
from ._handler import ApiHandler
from ._operations import OPERATIONS
from ._responses import reply
from ._runtime import Runtime
from ._stats import Stats

__all__ = ["build_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _fallback(patterns: list[tuple[re.Pattern[str], str]], stats: Stats) -> Handler:
    """404 (or 405 with ``Allow``) in FastAPI's words, for paths the API does not have."""

    async def handle(request: web.Request) -> web.StreamResponse:
        stats.unknown_routes += 1
        allowed = sorted({m for rx, m in patterns if rx.fullmatch(request.path)})
        if allowed and request.method not in allowed:
            return reply(
                stats, 405, {"detail": "Method Not Allowed"}, {"Allow": ", ".join(allowed)}
            )
        return reply(stats, 404, {"detail": "Not Found"}, None)

    return handle


def build_app(rt: Runtime) -> web.Application:
    """The application: one route per row of ``ENDPOINTS``, admin routes, JSON 404/405."""
    missing = set(ENDPOINTS) - set(OPERATIONS)
    if missing:
        raise RuntimeError(f"the emulator has no handler for: {', '.join(sorted(missing))}")
    app = web.Application(client_max_size=16 * 1024**2)
    patterns: list[tuple[re.Pattern[str], str]] = []
    for name, endpoint in ENDPOINTS.items():
        handler = ApiHandler(rt, endpoint, OPERATIONS[name])
        app.router.add_route(endpoint.method, endpoint.path, handler.handle)
        patterns.append((re.compile(path_regex(endpoint.path)), endpoint.method))
    add_admin_routes(rt, app)
    app.router.add_route("*", "/{tail:.*}", _fallback(patterns, rt.stats))
    return app
