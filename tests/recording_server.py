"""A loopback HTTP server in its own thread that records each request and answers by script.

Used where a test needs the exact request both clients send (headers, query, body), or a
server that misbehaves in a way the emulator does not (hangs, bombs, echoes the token).
Every answer comes from ``server.handler`` (an async function of the request), which a
test sets; the default answers a user. The fixtures ``server`` and ``client`` (an
``AsyncAgent`` of it) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web
from multidict import CIMultiDict

USER = {"id": 1, "github_user_id": "9", "github_username": "a", "email": "a@example.test"}
RUN = {"id": 7, "organization_id": 123, "status": "ACTIVE"}
PAGE = {"items": [USER], "total": 1, "page": 1, "size": 100, "pages": 1}


@attrs.define
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: CIMultiDict[str]  # as sent, looked up in any letter case
    body: bytes


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def answer_user(request: web.Request) -> web.StreamResponse:
    if request.path.endswith("/users"):
        return web.json_response(PAGE)
    if "/agent/run" in request.path:
        return web.json_response(RUN)
    return web.json_response(USER)


async def hang(request: web.Request) -> web.StreamResponse:
    """A server that never answers (well, after 30 s)."""
    await asyncio.sleep(30)
    return web.json_response(USER)


class RecordingServer:
    """``with RecordingServer() as server:``; ``server.base_url``, ``server.requests``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.handler: Handler = answer_user
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                list(request.query.items()),
                CIMultiDict(request.headers),
                body,
            )
        )
        return await self.handler(request)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
        # Closed connections finish closing in callbacks: let them run before the loop stops.
        await asyncio.sleep(0.1)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
