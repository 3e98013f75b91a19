"""The Redis backend against a real ``redis-server`` started on 127.0.0.1 for this module.

Skipped, with the reason, only when no ``redis-server`` binary can be found (``.ci/run``
installs one where it is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from codegen_async import ENDPOINTS, Quota, RateLimits
from codegen_async._endpoints import Endpoint
from codegen_async._ratelimit import (
    REGISTRY,
    LimiterRegistry,
    QuotaWaitExceeded,
    credential_fingerprint,
)
from codegen_async._ratelimit.redis import KEY_PREFIX, RedisBackend, RedisLimiter, redact_url
from codegen_async.errors import ConfigurationError

from .test_ratelimit import window_violations

TOKEN = "sk-test-SECRET-token-0123456789"
BASE = "https://api.example.test"
ENDPOINT = ENDPOINTS["analyze_sandbox_logs"]

REDIS_SERVER = shutil.which("redis-server")
pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(
        REDIS_SERVER is None,
        reason="redis-server is not installed (apt-get install redis-server, or run .ci/run)",
    ),
]


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A throw-away redis-server on a free loopback port, answering pings."""
    assert REDIS_SERVER is not None
    for _attempt in range(5):
        port = _free_port()
        proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        break
                time.sleep(0.05)
            if proc.poll() is None:
                return proc, port
        finally:
            client.close()
    pytest.fail("could not start redis-server")  # pragma: no cover - five ports taken


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port; yields its URL (database 0)."""
    proc, port = _start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The server's URL, with every key of the previous test gone."""
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server


@pytest.fixture
async def registry() -> AsyncIterator[LimiterRegistry]:
    reg = LimiterRegistry()
    yield reg
    await reg.aclose()


def _limiter(
    registry: LimiterRegistry,
    url: str,
    quota: Quota,
    *,
    mode: str = "window",
    margin: float = 0.0,
    endpoint: Endpoint = ENDPOINT,
) -> RedisLimiter:
    limits = RateLimits({endpoint.name: quota}, mode=mode, margin=margin)  # type: ignore[arg-type]
    limiter = registry.get(TOKEN, endpoint, limits, backend=url)
    assert isinstance(limiter, RedisLimiter)
    return limiter


async def _settle(limiter: RedisLimiter) -> None:
    """Wait for the limiter's background calls (release, penalize) to reach Redis."""
    tasks = limiter._backend.state().tasks
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


async def test_burst_then_wait_and_keys_never_hold_the_token(
    redis_url: str, registry: LimiterRegistry
) -> None:
    quota = Quota(3, 0.3)
    limiter = _limiter(registry, redis_url, quota)
    waits = []
    for _ in range(4):
        waits.append(await limiter.acquire())
        limiter.release()
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] > 0
    assert limiter.stats().grants == 4
    assert limiter.waits == 1
    await _settle(limiter)

    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        keys = sorted(_text(k) for k in await client.keys("*"))
        ttl = await client.pttl(limiter.slots_key)
    finally:
        await client.aclose()
    assert keys == sorted([limiter.slots_key, limiter.peers_key])
    fingerprint = credential_fingerprint(TOKEN)
    assert limiter.slots_key == f"{KEY_PREFIX}{{{fingerprint}}}:analyze_sandbox_logs"
    for key in (*keys, *limiter.keys):
        assert TOKEN not in key
        assert "SECRET" not in key
        assert "example.test" not in key
    assert ttl > 0


async def test_two_processes_worth_of_clients_share_the_quota(redis_url: str) -> None:
    """Two registries (as in two processes), each on its own loop and thread."""
    quota = Quota(3, 0.2)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def process() -> None:
        async def main() -> None:
            registry = LimiterRegistry()
            try:
                limiter = _limiter(registry, redis_url, quota, margin=0.002)

                async def call() -> None:
                    await limiter.acquire()
                    granted = time.monotonic()
                    await asyncio.sleep(0.002)
                    answered = time.monotonic()
                    limiter.release()
                    with lock:
                        spans.append((granted, answered))

                await asyncio.gather(*(call() for _ in range(5)))
            finally:
                await registry.aclose()

        try:
            asyncio.run(main())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(spans) == 10
    assert window_violations(spans, quota) == []


async def test_a_429_closes_the_route_for_every_process(
    redis_url: str, registry: LimiterRegistry
) -> None:
    quota = Quota(5, 10.0)
    first = _limiter(registry, redis_url, quota)
    other_registry = LimiterRegistry()
    try:
        second = _limiter(other_registry, redis_url, quota)
        assert second is not first
        first.penalize(0.5)
        await _settle(first)
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            assert 0 < await client.pttl(first.closed_key) <= 1500
        finally:
            await client.aclose()
        waited = await second.acquire()  # nothing local told it: only Redis did
        second.release()
        assert waited > 0
        assert first.stats().penalties == 1
    finally:
        await other_registry.aclose()


HOSTILE_ROUTE_KEYS = {
    # Another program (or a hand) wrote values no caller of this SDK can, without expiry:
    # each blocked the route in every process for as long as it said (here: for good).
    "pause far ahead": lambda c, lim: c.set(lim.closed_key, str(10**18)),
    "pause not a number": lambda c, lim: c.set(lim.closed_key, "soon"),
    "tick far ahead": lambda c, lim: c.set(lim.pace_key, str(10**18)),
    "slots far ahead": lambda c, lim: c.zadd(lim.slots_key, {f"x{i}": 1e18 for i in range(5)}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ROUTE_KEYS))
async def test_values_no_caller_could_write_never_block_a_route(
    redis_url: str, registry: LimiterRegistry, case: str
) -> None:
    limiter = _limiter(registry, redis_url, Quota(5, 0.5), mode="smooth")
    client = redis.Redis.from_url(redis_url)
    try:
        HOSTILE_ROUTE_KEYS[case](client, limiter)
    finally:
        client.close()
    waited = await asyncio.wait_for(limiter.acquire(), 10)
    limiter.release()
    assert waited < 5  # a tick of the smooth pace at most (was: for good)
    assert limiter.stats().grants == 1
    # Granted by Redis, not by the local fallback (a pause that is not a number made the
    # script fail, so each process limited alone and warned every few seconds).
    assert limiter._fallback_until == float("-inf")
    await _settle(limiter)


@pytest.mark.parametrize("key", ["slots", "closed", "peers"])
async def test_a_route_key_of_the_wrong_type_is_deleted_not_fatal(
    redis_url: str, registry: LimiterRegistry, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every acquire failed on it (WRONGTYPE), so each process limited alone, for good.
    monkeypatch.setattr("codegen_async._ratelimit.redis.FALLBACK_SECONDS", 0.2)
    limiter = _limiter(registry, redis_url, Quota(5, 0.5))
    name = {"slots": limiter.slots_key, "closed": limiter.closed_key, "peers": limiter.peers_key}
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset(name[key], "written", "by another program")
        await limiter.acquire()  # fails over to this process's own window
        limiter.release()
        assert limiter._fallback_until > float("-inf")
        await _settle(limiter)
        assert client.type(name[key]) != b"hash"
        await asyncio.sleep(0.3)  # the fallback period is over
        await limiter.acquire()
        assert limiter._held[-1] is not None  # a slot in Redis, not a local one
        limiter.release()
        await _settle(limiter)
    finally:
        client.close()


async def test_cancelled_waiters_take_nothing(redis_url: str, registry: LimiterRegistry) -> None:
    quota = Quota(1, 0.3)
    limiter = _limiter(registry, redis_url, quota)
    await limiter.acquire()
    limiter.release()
    head = asyncio.create_task(limiter.acquire())
    behind = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.05)
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    await behind
    limiter.release()
    await _settle(limiter)
    assert limiter.stats().grants == 2
    assert len(limiter._line) == 0
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.zcard(limiter.slots_key) == 2 - 1  # the first came back already
    finally:
        await client.aclose()


async def test_a_deadline_the_redis_wait_cannot_fit_raises_at_once(
    redis_url: str, registry: LimiterRegistry
) -> None:
    limiter = _limiter(registry, redis_url, Quota(1, 10.0))
    await limiter.acquire()
    limiter.release()
    await _settle(limiter)  # the slot is back 10 s after its release, on Redis's clock
    started = time.monotonic()
    with pytest.raises(QuotaWaitExceeded) as caught:
        await limiter.acquire(deadline=time.monotonic() + 2.0)
    assert time.monotonic() - started < 1.5  # not slept
    assert 8.0 < caught.value.retry_after <= 10.0
    assert len(limiter._line) == 0
    assert limiter.stats().grants == 1


async def test_a_slot_taken_by_a_cancelled_call_is_given_back(
    redis_url: str, registry: LimiterRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    quota = Quota(2, 30.0)
    limiter = _limiter(registry, redis_url, quota)
    real = RedisLimiter._eval_acquire
    entered = asyncio.Event()

    async def slow(self: RedisLimiter, state: Any, member: str) -> tuple[bool, int, bool]:
        entered.set()
        result = await real(self, state, member)  # the slot is taken in Redis...
        await asyncio.sleep(0.05)  # ...but the answer is slow to come back
        return result

    monkeypatch.setattr(RedisLimiter, "_eval_acquire", slow)
    task = asyncio.create_task(limiter.acquire())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _settle(limiter)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.zcard(limiter.slots_key) == 0
    finally:
        await client.aclose()
    monkeypatch.setattr(RedisLimiter, "_eval_acquire", real)
    assert [await limiter.acquire(), await limiter.acquire()] == [0.0, 0.0]


async def test_smooth_mode_paces_on_the_redis_clock(
    redis_url: str, registry: LimiterRegistry
) -> None:
    quota = Quota(4, 0.4)
    limiter = _limiter(registry, redis_url, quota, mode="smooth")
    assert limiter.smooth
    for _ in range(4):
        await limiter.acquire()  # held, not released: each score is grant time + hold
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        entries: list[Any] = await client.zrange(limiter.slots_key, 0, -1, withscores=True)
    finally:
        await client.aclose()
    grants = sorted(float(score) for _, score in entries)
    gaps = [b - a for a, b in itertools.pairwise(grants)]
    assert len(gaps) == 3
    assert min(gaps) >= 100_000  # microseconds: one every 0.4 s / 4, on Redis's own clock


async def test_an_unreachable_redis_falls_back_to_this_process(
    registry: LimiterRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
    limiter = _limiter(registry, url, Quota(2, 0.2))
    with caplog.at_level(logging.WARNING, logger="codegen_async.ratelimit"):
        waits = []
        for _ in range(3):
            waits.append(await limiter.acquire())
            limiter.release()
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] > 0  # the in-process limiter still kept the quota
    assert "limiting in this process only" in caplog.text
    assert "hunter2" not in caplog.text
    assert "hunter2" not in repr(limiter)


def test_redact_url() -> None:
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://user:pw@h/0") == "redis://user:***@h/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    # issue 14 #6: every other form redis-py reads a password from
    assert redact_url("redis://h:1/0?password=pw") == "redis://h:1/0?password=***"
    assert redact_url("rediss://h/0?db=2&password=pw&x=1") == "rediss://h/0?db=2&password=***&x=1"
    assert redact_url("unix:///run/redis.sock?db=0&password=pw") == (
        "unix:///run/redis.sock?db=0&password=***"
    )
    assert redact_url("redis://pw@h:1/0") == "redis://***@h:1/0"
    assert redact_url("redis://u:p@ss@h/0") == "redis://u:***@h/0"


async def test_a_password_in_the_query_is_never_shown(
    registry: LimiterRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """issue 14 #6: the fallback WARNING and every repr, whatever form the password takes."""
    port = _free_port()  # nothing listens there: the limiter falls back and warns
    urls = [
        f"redis://127.0.0.1:{port}/0?password=hunter2",
        f"redis://user:hunter2@127.0.0.1:{port}/0",
        "unix:///nonexistent/redis.sock?password=hunter2",
    ]
    shown = []
    with caplog.at_level(logging.DEBUG, logger="codegen_async.ratelimit"):
        for url in urls:
            limiter = _limiter(registry, url, Quota(2, 0.2))
            await limiter.acquire()
            limiter.release()
            shown += [repr(limiter), repr(limiter._backend), repr(registry)]
    assert "limiting in this process only" in caplog.text
    assert "password=***" in caplog.text
    for text in (caplog.text, *shown):
        assert "hunter2" not in text


async def test_a_stalled_redis_leaks_no_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue 14 #1: Redis stalls longer than the socket timeout; the client falls back; the
    acquire script queued behind the stall must take nothing when Redis resumes."""
    import signal

    from codegen_async._ratelimit import redis as redis_module

    monkeypatch.setattr(redis_module, "FALLBACK_SECONDS", 0.3)
    proc, port = _start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    backend = RedisBackend(url, socket_timeout=0.4)
    limiter = RedisLimiter(backend, "f" * 32, "analyze_sandbox_logs", Quota(1, 0.3), margin=0.0)
    probe = redis.Redis.from_url(url)
    try:
        assert await limiter.acquire() == 0.0  # warm: the connection is open
        limiter.release()
        await _settle(limiter)
        await asyncio.sleep(0.35)  # the slot is back
        proc.send_signal(signal.SIGSTOP)  # Redis stalls with the next script in its socket
        try:
            await limiter.acquire()  # times out after 0.4 s: this process's own quota
            limiter.release()
            await asyncio.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.3)  # the queued script has run by now
        seconds, micros = probe.time()
        in_use = probe.zcount(limiter.slots_key, seconds * 1_000_000 + micros, "+inf")
        assert in_use == 0, "a slot was taken for a caller long gone"
        # Back on Redis after the fallback: the quota's rate, not one held slot's lease.
        await asyncio.sleep(0.4)
        started = time.monotonic()
        for _ in range(3):
            await limiter.acquire()
            limiter.release()
        assert time.monotonic() - started < 3.0
    finally:
        probe.close()
        await backend.aclose()
        proc.terminate()
        proc.wait(timeout=10)


def test_missing_redis_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'codegen-async\[redis\]'"):
        RedisBackend("redis://127.0.0.1:1/0")


@pytest.fixture
async def me_server() -> AsyncIterator[str]:
    """A loopback server answering ``GET /v1/users/me``; yields its base URL."""
    from aiohttp import web

    async def me(_: web.Request) -> web.Response:
        return web.json_response({"id": 1, "github_user_id": "1", "github_username": "octo"})

    app = web.Application()
    app.router.add_get("/v1/users/me", me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_clients_close_their_redis_connections(redis_url: str, me_server: str) -> None:
    from codegen_async import AsyncAgent
    from codegen_async._ratelimit import REGISTRY

    base = me_server
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = AsyncAgent(TOKEN, 1, base_url=base, rate_limit_backend=redis_url)
            second = AsyncAgent(TOKEN, 1, base_url=base, rate_limit_backend=redis_url)
            await first.get_current_user()
            await second.get_current_user()
            backend = REGISTRY._backends[redis_url]
            assert len(backend._clients) == 1  # one client for this loop, shared
            await first.aclose()
            assert len(backend._clients) == 1  # still used by the second client
            await second.get_current_user()
            await second.aclose()
            assert len(backend._clients) == 0
            del first, second
            gc.collect()
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    finally:
        await REGISTRY.aclose()


_CLOSE_AFTER_A_FINISHED_CALL = """
import asyncio
from codegen_async._ratelimit.redis import RedisBackend

async def main():
    backend = RedisBackend("redis://127.0.0.1:1/0")  # never connected: nothing to reach
    owner = object.__new__(type("Owner", (), {}))
    backend.attach(owner)
    state = backend.state()
    answered = asyncio.get_running_loop().create_future()

    async def call():  # a background call that wakes its caller as it ends
        answered.set_result(None)

    state.spawn(call())
    await answered
    # The call has finished, and its done callback (which drops it from the tracked
    # set) is queued behind this task: detach must still return.
    await backend.detach(owner)
    print("closed")

asyncio.run(main())
"""


def test_close_returns_while_a_finished_call_is_still_tracked() -> None:
    # Python 3.12+: awaiting gather() of finished tasks does not yield to the loop, so a
    # close loop waiting "while tasks" spun forever (issue 12, the 3.13 hang). Run in a
    # child process: a loop that never yields cannot be stopped by a timeout inside it.
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CLOSE_AFTER_A_FINISHED_CALL],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("RedisBackend.detach() never returned (it spins on a finished task)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "closed"


async def test_while_redis_is_down_each_process_keeps_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four processes each kept the whole quota during a Redis outage (102-126 429s for
    four processes): each now keeps the quota divided by the processes Redis last saw on
    the token, and halves it again on a 429 (still honouring the pause)."""
    from codegen_async._ratelimit import redis as redis_module

    monkeypatch.setattr(redis_module, "FALLBACK_SECONDS", 30.0)
    proc, port = _start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    quota = Quota(8, 60.0)
    backends = [RedisBackend(url, socket_timeout=0.5) for _ in range(4)]  # four processes
    limiters = [RedisLimiter(b, "f" * 32, "analyze_sandbox_logs", quota) for b in backends]
    try:
        for limiter in limiters:
            await limiter.acquire()
            limiter.release()
        await _settle(limiters[0])
        proc.terminate()
        proc.wait(timeout=10)
        alone = limiters[-1]  # Redis saw all four by its call
        assert await alone.acquire() == 0.0  # from its share of the quota, without Redis
        assert await alone.acquire() == 0.0
        with pytest.raises(QuotaWaitExceeded):  # 8 // 4 = 2 per window for this process
            await alone.acquire(deadline=time.monotonic() + 1.0)
        alone.penalize(0.2)  # a 429 all the same: others share what Redis did not know
        assert alone._fallback.limit == 1
        with pytest.raises(QuotaWaitExceeded):
            await alone.acquire(deadline=time.monotonic() + 0.1)  # and the pause holds
    finally:
        for backend in backends:
            await backend.aclose()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


async def test_an_unclosed_client_gives_its_redis_connection_back(
    redis_url: str, me_server: str
) -> None:
    """An AsyncAgent dropped without aclose() must not leave its loop's Redis client behind."""
    from codegen_async import AsyncAgent
    from codegen_async._ratelimit import REGISTRY

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # the unclosed session's warning
            agent = AsyncAgent(TOKEN, 1, base_url=me_server, rate_limit_backend=redis_url)
            await agent.get_current_user()
            backend = REGISTRY._backends[redis_url]
            assert len(backend._clients) == 1
            del agent
            gc.collect()
            for _ in range(100):
                await asyncio.sleep(0.01)
                if not backend._clients:
                    break
        assert len(backend._clients) == 0
    finally:
        await REGISTRY.aclose()


async def test_environment_variable_selects_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from codegen_async import AsyncAgent
    from codegen_async._ratelimit import REGISTRY

    monkeypatch.setenv("CODEGEN_RATE_LIMIT_BACKEND", redis_url)
    async with AsyncAgent(TOKEN, 1, base_url=BASE) as agent:
        limiter = agent._transport._limiter(ENDPOINTS["get_current_user"])
        assert isinstance(limiter, RedisLimiter)
    await REGISTRY.aclose()


# --- a fleet: four processes, one token, one Redis ------------------------------------------

FLEET = 4
FLEET_CALLS = 5  # per process, all at once: four times the route's quota in total
FLEET_SCALE = 0.01


def _fleet_worker(
    base_url: str, token: str, org_id: int, redis_url: str, go: Any, results: Any
) -> None:
    """One process of the fleet (run with the spawn start method)."""
    from codegen_async import AsyncAgent

    async def main() -> dict[str, Any]:
        async with AsyncAgent(
            token,
            org_id,
            base_url=base_url,
            rate_limits=RateLimits.documented(FLEET_SCALE),
            rate_limit_backend=redis_url,
            max_retries=0,  # a 429 must surface, not be retried away
        ) as agent:
            await agent.get_current_user()  # warm up: connections to the API and Redis
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            done = await asyncio.gather(
                *(agent.analyze_sandbox_logs(1) for _ in range(FLEET_CALLS)),
                return_exceptions=True,
            )
            return {
                "ok": sum(not isinstance(r, BaseException) for r in done),
                "errors": [repr(r) for r in done if isinstance(r, BaseException)],
                "rate_limited": agent.stats.rate_limited,
                "waits": agent.stats.rate_limit_waits,
            }

    try:
        results.put(asyncio.run(main()))
    except BaseException as exc:  # pragma: no cover - reported by the test
        results.put({"ok": 0, "errors": [repr(exc)], "rate_limited": -1, "waits": 0})


@pytest.mark.slow
@pytest.mark.parametrize("server", ["fixed", "sliding"])
def test_four_processes_on_one_token_get_no_429(redis_url: str, server: str) -> None:
    import multiprocessing

    from codegen_async.emulator import EmulatorThread

    ctx = multiprocessing.get_context("spawn")
    go = ctx.Barrier(FLEET + 1)
    results = ctx.Queue()
    with EmulatorThread(time_scale=FLEET_SCALE, rate_limit=server, seed=0) as emu:  # type: ignore[arg-type]
        procs = [
            ctx.Process(
                target=_fleet_worker,
                args=(emu.base_url, emu.token, emu.org_id, redis_url, go, results),
            )
            for _ in range(FLEET)
        ]
        for proc in procs:
            proc.start()
        try:
            go.wait(timeout=120)  # every process is warm: now all at once
            outcomes = [results.get(timeout=120) for _ in procs]
        finally:
            for proc in procs:
                proc.join(timeout=30)
                if proc.is_alive():  # pragma: no cover - only on a hang
                    proc.kill()
        stats = emu.stats()

    assert [o["errors"] for o in outcomes] == [[]] * FLEET
    assert sum(o["ok"] for o in outcomes) == FLEET * FLEET_CALLS
    assert sum(o["rate_limited"] for o in outcomes) == 0
    assert stats["rate_limited"] == 0
    assert stats["responses"].get("429", 0) == 0
    # Twenty calls on one quota of five: at least fifteen had to wait, across processes.
    assert sum(o["waits"] for o in outcomes) >= FLEET * FLEET_CALLS - 5

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [_text(k) for k in client.keys("*")]
    finally:
        client.close()
    assert keys, "the fleet kept its quota in Redis"
    assert all(k.startswith(KEY_PREFIX) for k in keys)
    assert all(emu.token not in k for k in keys)


async def test_a_stalled_redis_does_not_hold_a_call_past_its_deadline(tmp_path: Path) -> None:
    """Redis stalls (SIGSTOP) with a socket timeout of 5 s: a call with deadline=1 still
    leaves the line by its deadline (QuotaWaitExceeded, RateLimitError in the client),
    and the stalled ask, once it fails, puts the route in fallback for the next callers."""
    import signal

    proc, port = _start_redis(tmp_path)
    backend = RedisBackend(f"redis://127.0.0.1:{port}/0", socket_timeout=5.0)
    limiter = RedisLimiter(backend, "e" * 32, "analyze_sandbox_logs", Quota(100, 1.0), margin=0.0)
    try:
        assert await limiter.acquire() == 0.0  # warm: the connection is open
        limiter.release()
        await _settle(limiter)
        proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(QuotaWaitExceeded):
                await limiter.acquire(deadline=time.monotonic() + 1.0)
            assert time.monotonic() - started < 3.0  # not the 5 s socket timeout
            assert len(limiter._line) == 0
        finally:
            proc.send_signal(signal.SIGCONT)
        await _settle(limiter)
    finally:
        await backend.aclose()
        proc.terminate()
        proc.wait(timeout=10)


async def test_a_call_held_by_a_stalled_redis_says_so_not_quota_used_up(
    tmp_path: Path, me_server: str
) -> None:
    """Redis stalls while a call with a deadline waits on it: the call ends at its deadline
    with APITimeoutError naming the rate-limit backend, not a 429-looking RateLimitError
    that says the quota is used up (nobody used it up; the API was never asked)."""
    import signal

    from codegen_async import AsyncAgent
    from codegen_async.errors import APITimeoutError, RateLimitError

    proc, port = _start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    agent = AsyncAgent(TOKEN, 1, base_url=me_server, rate_limit_backend=url, fleet_polling=False)
    try:
        await agent.get_current_user()  # warm: the Redis connection is open
        proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(APITimeoutError) as caught:
                await agent.get_current_user(deadline=1.0)
            assert time.monotonic() - started < 4.0  # the deadline, not the socket timeout
        finally:
            proc.send_signal(signal.SIGCONT)
        assert not isinstance(caught.value, RateLimitError)
        message = str(caught.value)
        assert "deadline of 1s passed" in message
        assert "rate-limit backend" in message and "did not answer" in message
        assert "used up" not in message
        assert "redis://" not in message  # the backend's URL may carry a password
    finally:
        await agent.aclose()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("fleet_polling", [False, True])
@pytest.mark.parametrize("in_flight", [False, True])
async def test_aclose_is_not_held_by_a_stalled_redis(
    tmp_path: Path, me_server: str, fleet_polling: bool, in_flight: bool
) -> None:
    """Redis stalls (SIGSTOP): closing the client used to wait out the 5 s socket timeout
    (a release script, or the connection's goodbye, stuck in a socket nobody reads). It
    is an optional backend: aclose() now returns within about a second, leaving no task
    nor connection behind (ResourceWarning is an error here), and a slot it could not give
    back comes back by itself (max_hold)."""
    import signal

    from codegen_async import AsyncAgent, ClientClosedError

    proc, port = _start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    agent = AsyncAgent(
        TOKEN, 1, base_url=me_server, rate_limit_backend=url, fleet_polling=fleet_polling
    )
    call: asyncio.Future[object] | None = None
    try:
        await agent.get_current_user()  # warm: the Redis connection is open
        proc.send_signal(signal.SIGSTOP)
        try:
            if in_flight:  # a call waiting on the stalled Redis for its slot
                call = asyncio.ensure_future(agent.get_current_user())
                await asyncio.sleep(0.3)
            started = time.monotonic()
            await agent.aclose()
            closing = time.monotonic() - started
            if call is not None:
                with pytest.raises(ClientClosedError):
                    await asyncio.wait_for(call, 10)
        finally:
            proc.send_signal(signal.SIGCONT)
        assert closing < 2.0, f"aclose took {closing:.2f}s"  # was the 5 s socket timeout
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not [t for t in left if "redis" in repr(t).lower()], left
    finally:
        await agent.aclose()
        await REGISTRY.aclose()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("fleet_polling", [False, True])
@pytest.mark.parametrize("after", [1, 2, 3, 0.1], ids=["1-turn", "2-turns", "3-turns", "0.1s"])
async def test_a_cancelled_aclose_still_closes_everything(
    tmp_path: Path, me_server: str, fleet_polling: bool, after: float
) -> None:
    """Redis stalls and the caller bounds aclose() (asyncio.timeout, a second Ctrl-C): the
    cancellation used to stop the close half-way, leaving calls to Redis running and
    connections open (Redis's, or the HTTP session when it came before that was closed).
    The cancellation is raised at once, and the close finishes in the background, bounded.
    """
    import signal

    from codegen_async import AsyncAgent

    proc, port = _start_redis(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    agent = AsyncAgent(
        TOKEN, 1, base_url=me_server, rate_limit_backend=url, fleet_polling=fleet_polling
    )
    try:
        await agent.get_current_user()  # warm: the Redis connection is open
        state = REGISTRY.redis_backend(url).state()
        session = agent._transport._shared.session
        assert session is not None
        proc.send_signal(signal.SIGSTOP)
        try:
            call = asyncio.ensure_future(agent.get_current_user())  # asks the stalled Redis
            await asyncio.sleep(0.3)
            closing = asyncio.ensure_future(agent.aclose())
            if isinstance(after, float):
                await asyncio.sleep(after)
            else:
                for _ in range(after):
                    await asyncio.sleep(0)
            closing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await closing
            await asyncio.gather(call, return_exceptions=True)
            finishing = [t for t in asyncio.all_tasks() if t.get_name().startswith("codegen-async")]
            await asyncio.wait_for(asyncio.gather(*finishing, return_exceptions=True), 10)
            assert not _redis_tasks()
            assert session.closed
            pool = state.client.connection_pool
            connections = [*pool._available_connections, *pool._in_use_connections]
            assert not [c for c in connections if c.is_connected]
        finally:
            proc.send_signal(signal.SIGCONT)
    finally:
        await agent.aclose()
        await REGISTRY.aclose()
        proc.terminate()
        proc.wait(timeout=10)


def _redis_tasks() -> list[asyncio.Task[object]]:
    me = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not me and "redis" in repr(t).lower()]


@pytest.mark.parametrize("turns", range(6))
async def test_closing_another_loops_client_never_loses_a_cancellation(
    monkeypatch: pytest.MonkeyPatch, turns: int
) -> None:
    """RedisBackend.aclose() closes another loop's client on that loop and waited for it
    with asyncio.wait_for, which on 3.10/3.11 loses a cancellation arriving as the close
    completes (CPython gh-86296): aclose() returned as if not cancelled. The other loop's
    close is done at once here; the caller is cancelled ``turns`` loop turns later."""
    import concurrent.futures

    def run_there(coro: Any, loop: asyncio.AbstractEventLoop) -> concurrent.futures.Future[None]:
        coro.close()  # closed on its own loop, at once
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        done.set_result(None)
        return done

    other = asyncio.new_event_loop()
    thread = threading.Thread(target=other.run_forever, daemon=True)
    thread.start()
    try:
        backend = RedisBackend("redis://127.0.0.1:1/0")
        backend._clients[other] = Any  # type: ignore[assignment]
        monkeypatch.setattr(asyncio, "run_coroutine_threadsafe", run_there)
        task = asyncio.ensure_future(backend.aclose())
        for _ in range(turns):
            await asyncio.sleep(0)
        if task.cancel():
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            await task
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join(5)
        other.close()
