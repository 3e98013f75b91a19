"""The API token never shows: not in logs, reprs, error messages or tracebacks.

With DEBUG logging on for every logger (the SDK's, aiohttp's, asyncio's), every operation
and every error path runs against the emulator; then everything a user could print, log or
send to an error tracker is searched for the token (whole, or its random part alone).
Also: plain ``http://`` to a host that is not loopback is refused unless asked for, and a
redirect to another origin does not carry the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

import codegen_sync
from codegen_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncAgent,
    AuthenticationError,
    BadRequestError,
    CodegenError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RateLimits,
    Timeout,
    UnprocessableEntityError,
)
from codegen_async._ratelimit import REGISTRY
from codegen_async.emulator import Emulator, EmulatorThread

from .reliability_ops import World, drive_async, drive_sync, world_of

TESTS_DIR = Path(__file__).parent
SECRET = "7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b"
TOKEN = f"cg-live-{SECRET}"
WRONG_SECRET = "d41d8cd98f00b204e9800998ecf8427e"
WRONG_TOKEN = f"cg-live-{WRONG_SECRET}"
NEEDLES = (TOKEN, SECRET, WRONG_TOKEN, WRONG_SECRET, SECRET[:16], WRONG_SECRET[:16])


def assert_no_secret(text: str, where: str) -> None:
    for needle in NEEDLES:
        assert needle not in text, f"the token leaked into {where}: ...{needle}..."


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, suppressed or not."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _sdk_locals(exc: BaseException) -> str:
    lines = []
    for link in _chain(exc):
        summary = traceback.TracebackException.from_exception(link, capture_locals=True)
        for frame in summary.stack:
            if frame.filename.startswith(str(TESTS_DIR)):
                continue
            lines.append(f"{frame.filename}:{frame.lineno} {frame.name}")
            lines.extend(f"    {k} = {v}" for k, v in (frame.locals or {}).items())
    return "\n".join(lines)


def surfaces_of(value: Any) -> Iterator[tuple[str, str]]:
    """Everything that may be printed about a value: str, repr, attributes, tracebacks."""
    yield "repr", repr(value)
    yield "str", str(value)
    if isinstance(value, BaseException):
        yield "traceback", "".join(traceback.format_exception(value))
        # What error trackers and debuggers show: the local variables of every frame (but
        # the test's own frames, whose locals hold the token on purpose).
        yield "traceback with locals", _sdk_locals(value)
        for link in _chain(value):
            yield "chained traceback", "".join(traceback.format_exception_only(link))
            yield "attributes", repr(vars(link))
            yield "args", repr(link.args)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from surfaces_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from surfaces_of(item)
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            if field.repr:  # a field hidden from repr (the token itself) is the secret
                yield from surfaces_of(getattr(value, field.name))


@attrs.define
class Evidence:
    """What one scenario produced: call outcomes and objects to search."""

    items: list[tuple[str, Any]] = attrs.field(factory=list)

    def add(self, label: str, value: Any) -> None:
        self.items.append((label, value))

    def check(self, caplog: pytest.LogCaptureFixture, *, expect_logs: bool = True) -> None:
        for label, value in self.items:
            for kind, text in surfaces_of(value):
                assert_no_secret(text, f"{kind} of {label}")
        records = caplog.records
        if expect_logs:
            assert records, "DEBUG logging captured nothing: the check would prove nothing"
        for record in records:
            where = f"log record {record.name}:{record.levelname}"
            assert_no_secret(record.getMessage(), where)
            assert_no_secret(repr(record.args), where)
            if record.exc_info and record.exc_info[1] is not None:
                assert_no_secret("".join(traceback.format_exception(record.exc_info[1])), where)
        assert_no_secret(caplog.text, "the formatted log")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """DEBUG for every logger, the SDK's and aiohttp's included."""
    caplog.set_level(logging.DEBUG)
    for name in ("codegen_async", "codegen_sync", "aiohttp", "aiohttp.client",
                 "aiohttp.server", "aiohttp.access", "aiohttp.internal", "aiohttp.web",
                 "asyncio"):  # fmt: skip
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=0.01, seed=0, token=TOKEN, failure_rate=0.0) as server:
        yield server


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codegen_async._transport.backoff_delay", lambda *a, **k: 0.01)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- every operation ---------------------------------------------------------------------
async def test_every_operation_keeps_the_token_out_of_sight(
    emu: Emulator, debug_logs: pytest.LogCaptureFixture
) -> None:
    evidence = Evidence()
    async with emu.client() as agent:
        world = await world_of(agent, emu.info())
        outcomes = await drive_async(agent, world)
        evidence.add("client", agent)
        evidence.add("client stats", agent.stats)
        evidence.add("client settings", agent._config)
        evidence.add("transport", agent._transport)
        evidence.add("rate limits", agent.rate_limits)
        evidence.add("limiters", list(agent._transport._shared.limiters.values()))
    evidence.add("closed client", agent)
    evidence.add("emulator", emu)
    evidence.add("emulator stats", emu.stats())
    for name, outcome in outcomes:
        evidence.add(name, outcome)
    failed = [(name, o) for name, o in outcomes if isinstance(o, CodegenError)]
    assert not failed, f"every operation should succeed here: {failed}"
    assert len(outcomes) >= 30
    evidence.check(debug_logs)


def test_every_operation_of_the_sync_client_keeps_the_token_out_of_sight(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    evidence = Evidence()
    with EmulatorThread(time_scale=0.01, seed=0, token=TOKEN, failure_rate=0.0) as server:
        with codegen_sync.Agent(**server.client_kwargs()) as agent:
            runs = agent.list_runs(limit=100).items
            world = World.from_info(
                {"user_id": server.user_id, "org_id": server.org_id, "repo_ids": [456],
                 "pull_request_ids": [1]},
                next(r.id for r in runs if r.is_terminal),
                next(r.id for r in runs if r.status == "paused"),
            )  # fmt: skip
            outcomes = drive_sync(agent, world)
            evidence.add("sync client", agent)
            evidence.add("sync client stats", agent.stats)
        evidence.add("emulator thread", server)
    for name, outcome in outcomes:
        evidence.add(name, outcome)
    assert not [o for _, o in outcomes if isinstance(o, CodegenError)]
    evidence.check(debug_logs)


# --- every error path ---------------------------------------------------------------------
@attrs.frozen
class ErrorPath:
    label: str
    error: type[CodegenError]
    fault: tuple[str, str, dict[str, Any]] | None = None  # operation, kind, options
    call: str = "get_run"
    client: dict[str, Any] = attrs.field(factory=dict, repr=False)  # may hold a token


ERROR_PATHS = [
    ErrorPath("401 wrong token", AuthenticationError, client={"token": WRONG_TOKEN}),
    ErrorPath("401 no such token, creating call", AuthenticationError, call="run",
              client={"token": WRONG_TOKEN}),
    ErrorPath("400 sandbox without logs", BadRequestError, call="analyze_no_logs"),
    ErrorPath("402 plan limit", PaymentRequiredError, ("run", "status", {"status": 402}),
              call="run"),
    ErrorPath("403 foreign organization", PermissionDeniedError, call="foreign_org"),
    ErrorPath("404 unknown run", NotFoundError, call="missing_run"),
    ErrorPath("422 validation", UnprocessableEntityError, ("get_run", "status", {"status": 422})),
    ErrorPath("429 with Retry-After", RateLimitError,
              ("get_run", "status", {"status": 429, "retry_after": 0.05, "count": 5})),
    ErrorPath("500", InternalServerError, ("get_run", "status", {"status": 500, "count": 5})),
    ErrorPath("503 on a creating call", InternalServerError, ("run", "status", {"status": 503}),
              call="run"),
    ErrorPath("502 HTML page", InternalServerError, ("get_run", "html", {"count": 5})),
    ErrorPath("timeout", APITimeoutError, ("get_run", "hang", {"delay": 0.5, "count": 5}),
              client={"timeout": Timeout(total=0.1, connect=0.1)}),
    ErrorPath("connection dropped", APIConnectionError,
              ("get_run", "drop_before_action", {"count": 10})),
    ErrorPath("connection dropped after acting", APIConnectionError,
              ("run", "drop_after_action", {}), call="run"),
    ErrorPath("truncated body", APIConnectionError, ("run", "truncate", {}), call="run"),
    ErrorPath("connection refused", APIConnectionError, call="refused"),
    ErrorPath("not JSON", APIResponseValidationError, ("get_run", "non_json", {})),
    ErrorPath("wrong shape", APIResponseValidationError, ("get_run", "wrong_shape", {})),
]  # fmt: skip


async def _error_call(agent: AsyncAgent, emu: Emulator, path: ErrorPath) -> Any:
    if path.call == "run":
        return await agent.run("Fix the flaky test")
    if path.call == "analyze_no_logs":
        return await agent.analyze_sandbox_logs(2)
    if path.call == "foreign_org":
        return await agent.get_users(org_id=emu.foreign_org_id)
    if path.call == "missing_run":
        return await agent.get_run(10**9)
    return await agent.get_run(1)


@pytest.mark.parametrize("path", ERROR_PATHS, ids=[p.label for p in ERROR_PATHS])
async def test_every_error_path_keeps_the_token_out_of_sight(
    emu: Emulator, debug_logs: pytest.LogCaptureFixture, path: ErrorPath
) -> None:
    options: dict[str, Any] = {"max_retries": 1, **path.client}
    if path.call == "refused":
        options["base_url"] = f"http://127.0.0.1:{_closed_port()}"
    if path.fault is not None:
        operation, kind, fault_options = path.fault
        emu.inject_fault(operation, kind, **fault_options)  # type: ignore[arg-type]
    evidence = Evidence()
    async with emu.client(**options) as agent:
        with pytest.raises(path.error) as info:
            await asyncio.wait_for(_error_call(agent, emu, path), 20)
        evidence.add("client", agent)
        evidence.add("client stats", agent.stats)
    evidence.add(path.label, info.value)
    evidence.add("pytest's own report", info.getrepr(style="long"))
    evidence.check(debug_logs, expect_logs=False)


def test_the_sync_client_error_path_keeps_the_token_out_of_sight(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    evidence = Evidence()
    with EmulatorThread(time_scale=0.01, seed=0, token=TOKEN) as server:
        server.inject_fault("get_run", "status", status=500, count=5)
        kwargs = server.client_kwargs(max_retries=1)
        with codegen_sync.Agent(**kwargs) as agent, pytest.raises(InternalServerError) as info:
            agent.get_run(1)
        with codegen_sync.Agent(**{**kwargs, "token": WRONG_TOKEN}) as agent:
            with pytest.raises(AuthenticationError) as denied:
                agent.get_current_user()
            evidence.add("sync client", agent)
    evidence.add("500", info.value)
    evidence.add("401", denied.value)
    evidence.check(debug_logs)


def test_configuration_errors_keep_the_token_out_of_sight() -> None:
    for kwargs in (
        {"token": TOKEN, "base_url": "http://api.codegen.com"},
        {"token": TOKEN, "base_url": "ftp://x"},
        {"token": TOKEN + "\n"},
        {"token": TOKEN, "org_id": "acme"},
    ):
        with pytest.raises(ConfigurationError) as info:
            AsyncAgent(**kwargs)  # type: ignore[arg-type]
        for _, text in surfaces_of(info.value):
            assert_no_secret(text, "a configuration error")


async def test_the_rate_limit_registry_keys_hold_no_token(emu: Emulator) -> None:
    async with emu.client() as agent:
        await agent.get_current_user()
        assert_no_secret(repr(REGISTRY.__dict__), "the limiter registry")
        for limiter in agent._transport._shared.limiters.values():
            assert_no_secret(repr(limiter), "a limiter")


# --- plain http to hosts that are not loopback ---------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://api.codegen.com",
        "http://10.1.2.3:8080",
        "http://0.0.0.0:8000",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]:80",
    ],
)
def test_plain_http_elsewhere_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="allow_insecure_http") as info:
        AsyncAgent(TOKEN, 1, base_url=url)
    assert_no_secret(str(info.value), "the refusal")
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        codegen_sync.Agent(TOKEN, 1, base_url=url)
    monkeypatch.setenv("CODEGEN_API_BASE_URL", url)  # the environment is no way around it
    with pytest.raises(ConfigurationError, match="allow_insecure_http"):
        AsyncAgent(TOKEN, 1)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9",
                                 "https://api.codegen.com", "https://10.1.2.3"])  # fmt: skip
def test_https_or_loopback_needs_no_opt_in(url: str) -> None:
    assert AsyncAgent(TOKEN, 1, base_url=url).base_url == url


async def test_the_opt_in_allows_plain_http(emu: Emulator) -> None:
    agent = AsyncAgent(TOKEN, 1, base_url="http://intranet.example:80", allow_insecure_http=True)
    await agent.aclose()
    async with emu.client(allow_insecure_http=True) as client:  # and it still works
        assert (await client.get_current_user()).id == emu.user_id


# --- redirects to another origin lose the Authorization header ----------------------------
@attrs.define
class Recorder:
    """A local server that answers every request as the API would, recording headers."""

    seen: list[tuple[str, str, str | None]] = attrs.field(factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.host, request.path, request.headers.get("Authorization")))
        await request.read()
        # Fits both a user and a run (a 301/302/303 turns the POST into a GET).
        return web.json_response({"id": 5, "organization_id": 1, "status": "ACTIVE",
                                  "github_user_id": "1", "github_username": "a"})  # fmt: skip


@attrs.define
class Redirector:
    """The API's host: redirects every request to ``target`` (a path is appended)."""

    target: str = ""
    status: int = 307
    seen: list[str | None] = attrs.field(factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Authorization"))
        raise _redirect(self.status, self.target + request.path_qs)


def _redirect(status: int, location: str) -> web.HTTPException:
    classes = {301: web.HTTPMovedPermanently, 302: web.HTTPFound, 303: web.HTTPSeeOther,
               307: web.HTTPTemporaryRedirect, 308: web.HTTPPermanentRedirect}  # fmt: skip
    return classes[status](location=location)


async def _serve(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_redirect_to_another_port_does_not_carry_the_token(
    status: int, method: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Another port is another origin: aiohttp drops ``Authorization`` on the way there."""
    recorder = Recorder()
    redirector = Redirector(status=status)
    target_runner, target_port = await _serve(recorder.handle)
    source_runner, source_port = await _serve(redirector.handle)
    redirector.target = f"http://127.0.0.1:{target_port}"
    try:
        async with AsyncAgent(
            TOKEN, 1, base_url=f"http://127.0.0.1:{source_port}",
            rate_limits=RateLimits.disabled(),
        ) as agent:  # fmt: skip
            if method == "GET":
                await agent.get_current_user()
            else:
                await agent.run("Fix the flaky test")
    finally:
        await source_runner.cleanup()
        await target_runner.cleanup()
    assert redirector.seen == [f"Bearer {TOKEN}"]  # the API's own host did get it
    assert len(recorder.seen) == 1
    assert recorder.seen[0][2] is None, "the token followed the redirect to another origin"
    assert_no_secret(debug_logs.text, "the log")


async def test_a_redirect_to_another_host_name_does_not_carry_the_token() -> None:
    """127.0.0.1 -> localhost on the same port: the same socket, another origin."""
    recorder = Recorder()
    runner, port = await _serve(recorder.handle)
    redirector = Redirector(target=f"http://localhost:{port}")
    source_runner, source_port = await _serve(redirector.handle)
    try:
        async with AsyncAgent(
            TOKEN, 1, base_url=f"http://127.0.0.1:{source_port}",
            rate_limits=RateLimits.disabled(),
        ) as agent:  # fmt: skip
            await agent.get_current_user()
    finally:
        await source_runner.cleanup()
        await runner.cleanup()
    assert recorder.seen and recorder.seen[0][0].startswith("localhost")
    assert recorder.seen[0][2] is None


async def test_a_same_origin_redirect_keeps_the_token() -> None:
    """The control: on the same origin the header does go along (so the checks above bite)."""
    recorder = Recorder()
    app = web.Application()

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location="/moved" + request.path)

    app.router.add_route("*", "/moved/{tail:.*}", recorder.handle)
    app.router.add_route("*", "/{tail:.*}", moved)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[0][1])
    try:
        async with AsyncAgent(
            TOKEN, 1, base_url=f"http://127.0.0.1:{port}", rate_limits=RateLimits.disabled()
        ) as agent:
            await agent.get_current_user()
    finally:
        await runner.cleanup()
    assert recorder.seen == [(f"127.0.0.1:{port}", "/moved/v1/users/me", f"Bearer {TOKEN}")]


def test_a_redirect_from_the_sync_client_does_not_carry_the_token() -> None:
    recorder = Recorder()
    result: dict[str, Any] = {}

    async def serve_and_wait(ready: asyncio.Event, done: asyncio.Event) -> None:
        runner, port = await _serve(recorder.handle)
        redirector = Redirector(target=f"http://127.0.0.1:{port}")
        source_runner, source_port = await _serve(redirector.handle)
        result["base_url"] = f"http://127.0.0.1:{source_port}"
        ready.set()
        await done.wait()
        await source_runner.cleanup()
        await runner.cleanup()

    loop = asyncio.new_event_loop()
    ready, done = asyncio.Event(), asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve_and_wait(ready, done),), daemon=True
    )
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(ready.wait(), loop).result(10)
        with codegen_sync.Agent(
            TOKEN, 1, base_url=result["base_url"], rate_limits=RateLimits.disabled()
        ) as agent:
            agent.get_current_user()
    finally:
        loop.call_soon_threadsafe(done.set)
        thread.join(10)
        loop.close()
    assert recorder.seen and recorder.seen[0][2] is None


# --- regression tests: the token in frame locals ----------------------------------------------
def test_the_token_is_held_as_a_secret_string() -> None:
    """Tracebacks with locals printed the Authorization header and token (regression test)."""
    agent = AsyncAgent(TOKEN, 1, base_url="http://127.0.0.1:9")
    header = agent._transport._headers["Authorization"]
    assert header == f"Bearer {TOKEN}" and f"{header}" == f"Bearer {TOKEN}"  # sent as is
    assert str(header).encode() == f"Bearer {TOKEN}".encode()
    assert_no_secret(repr(agent._transport._headers), "the headers' repr")
    assert agent._config.token == TOKEN
    assert_no_secret(repr(agent._config.token), "the token's repr")


def test_repr_of_a_client_whose_constructor_failed_does_not_raise() -> None:
    """``repr(self)`` in the failing ``__init__`` frame raised AttributeError (regression)."""
    with pytest.raises(ConfigurationError) as info:
        AsyncAgent(TOKEN, 1, base_url="http://api.codegen.com")
    frames = traceback.TracebackException.from_exception(info.value, capture_locals=True)
    init = next(f for f in frames.stack if f.name == "__init__")
    assert init.locals is not None and init.locals["self"] == "AsyncAgent(<not configured>)"
    assert_no_secret(_sdk_locals(info.value), "the locals of a failed constructor")


@pytest.mark.parametrize("where", ["2xx body of the wrong shape", "X-Request-Id header"])
async def test_a_server_echoing_the_token_does_not_leak_it(
    where: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """A 2xx answer of the wrong shape holding the token, or a request id that is the token:
    neither the error's attributes nor the per-attempt log line show it."""

    async def echo(request: web.Request) -> web.Response:
        if where.startswith("2xx"):
            return web.json_response({"id": TOKEN, "email": f"x {TOKEN}"})
        return web.json_response({"detail": "no"}, status=401, headers={"X-Request-Id": TOKEN})

    runner, port = await _serve(echo)
    try:
        async with AsyncAgent(
            TOKEN, 1, base_url=f"http://127.0.0.1:{port}", max_retries=0,
            rate_limits=RateLimits.disabled(),
        ) as agent:  # fmt: skip
            with pytest.raises((APIResponseValidationError, AuthenticationError)) as caught:
                await agent.get_current_user()
    finally:
        await runner.cleanup()
    assert_no_secret(repr(vars(caught.value)), "the error's attributes")
    assert_no_secret(debug_logs.text, "the log")


# A token as some services issue them: base64-like, so encodings change it.
TRICKY = "cg-live+7f3c9a1e/5b2d4c6f8a0b=1c2d3e4f5a6b"
TRICKY_PARTS = ("7f3c9a1e", "5b2d4c6f", "1c2d3e4f5a6b")  # the secret's segments
ECHOES = {
    "percent-encoded": quote(TRICKY, safe=""),
    "percent-encoded, lower-case escapes": quote(TRICKY, safe="").replace("%2B", "%2b"),
    "another letter case": "Bearer " + TRICKY.upper(),
    "JSON-escaped slash": TRICKY.replace("/", "\\/"),
    "JSON-escaped plus": TRICKY.replace("+", "\\u002B"),
    "cut short": TRICKY[:25] + "...",
    "its tail": "..." + TRICKY[-22:],
}


def assert_no_tricky(text: str, where: str) -> None:
    for part in TRICKY_PARTS:
        assert part not in text.lower(), f"the token leaked into {where}: ...{part}..."


@pytest.mark.parametrize("where", ["401 JSON body", "401 header", "502 page", "2xx shape"])
@pytest.mark.parametrize("echo", list(ECHOES))
async def test_a_token_echoed_back_transformed_is_masked_too(
    echo: str, where: str, debug_logs: pytest.LogCaptureFixture
) -> None:
    """Servers and gateways echo the token percent-encoded, JSON-escaped, in another letter
    case or cut short; only the exact token was masked, so these showed in errors and logs."""
    form = ECHOES[echo]

    async def answer(request: web.Request) -> web.Response:
        if where == "401 JSON body":
            body = '{"detail": "invalid token: %s"}' % form  # noqa: UP031 - raw JSON text
            return web.Response(text=body, status=401, content_type="application/json")
        if where == "401 header":
            challenge = f'Bearer error="invalid_token", error_description="{form}"'
            return web.json_response(
                {"detail": "no"}, status=401, headers={"WWW-Authenticate": challenge}
            )
        if where == "502 page":
            page = f"<html><body>upstream refused {form}</body></html>"
            return web.Response(text=page, status=502, content_type="text/html")
        body = '{"id": "%s", "email": "x"}' % form  # noqa: UP031 - a User of the wrong shape
        return web.Response(text=body, content_type="application/json")

    runner, port = await _serve(answer)
    try:
        async with AsyncAgent(
            TRICKY, 1, base_url=f"http://127.0.0.1:{port}", max_retries=0,
            rate_limits=RateLimits.disabled(),
        ) as agent:  # fmt: skip
            with pytest.raises(CodegenError) as caught:
                await agent.get_current_user()
    finally:
        await runner.cleanup()
    error = caught.value
    for kind, text in surfaces_of(error):
        assert_no_tricky(text, f"{kind} of the error")
    assert_no_tricky(debug_logs.text, "the log")
    if where == "401 header":  # still the server's headers, looked up in any letter case
        assert isinstance(error, AuthenticationError)
        assert "invalid_token" in error.headers["www-authenticate"]


def test_masking_keeps_what_gives_nothing_away() -> None:
    from codegen_async._masking import mask_bytes, mask_json, mask_text

    assert mask_text("token cg-l...6b expired", TRICKY) == "token cg-l...6b expired"
    assert mask_text(f"a {TRICKY} b", TRICKY) == "a <redacted> b"
    assert mask_bytes(b"\xff" + TRICKY.encode(), TRICKY) == b"\xff<redacted>"
    assert mask_json({TRICKY: [TRICKY, 1, None]}, TRICKY) == {"<redacted>": ["<redacted>", 1, None]}
    assert mask_text("Test the test", "test") == "Test the <redacted>"  # short: exact only


_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=-_."


@settings(max_examples=300, deadline=None, database=None)
@given(
    token=st.text(alphabet=_TOKEN_CHARS, min_size=16, max_size=64),
    form=st.sampled_from(
        [
            lambda t: t,
            lambda t: quote(t, safe=""),
            lambda t: quote(t, safe="").lower(),
            lambda t: t.upper(),
            lambda t: json.dumps(t)[1:-1].replace("/", "\\/"),
            lambda t: "".join(c if c.isalnum() else f"\\u{ord(c):04X}" for c in t),
            lambda t: t[: (len(t) + 1) // 2],
            lambda t: t[-((len(t) + 1) // 2) :],
        ]
    ),
    before=st.text(alphabet=' :"<>!,;()', max_size=8),
    after=st.text(alphabet=' :"<>!,;()', max_size=8),
)
def test_masking_leaves_no_form_of_the_token(
    token: str, form: Any, before: str, after: str
) -> None:
    from codegen_async._masking import mask_text

    echoed = form(token)
    masked = mask_text(before + echoed + after, token)
    assert echoed.lower() not in masked.lower()
    assert masked.startswith(before) and masked.endswith(after)  # nothing else touched
