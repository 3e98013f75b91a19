"""Rate limits shared through Redis by every process and host that uses one token.

Selected with ``rate_limit_backend="redis://HOST:PORT/DB"`` (or ``CODEGEN_RATE_LIMIT_BACKEND``);
needs the ``redis`` extra (``pip install 'codegen-async[redis]'``).

Each route of each credential has a sorted set of the slots in use, scored by the time (in
microseconds, on the Redis server's clock) at which each slot comes back: ``now + hold``
while its request is in flight, ``answer + window + margin`` once the answer arrived. One
Lua script checks the route's 429 penalty, drops the slots that came back, counts the rest
and takes a slot, atomically; it reads the time with ``TIME`` so that hosts whose clocks
disagree still agree on the windows. A slot whose process died comes back after ``hold``
(``window + margin + max_hold``). Keys look like ``codegen_async:rl:{<sha256 of base URL and
token>}:<operation>:<limit>/<window>s``: never the token itself. The braces are a Redis
Cluster hash tag, so every key of one credential lives on one shard.

In one process, callers still queue in a first come, first served line (as in the memory
limiter) and only the first of them talks to Redis; across processes the order is whoever
asks first once a slot comes back. The smooth mode adds a "next tick" key to the same script
(one slot every ``(window + margin) / limit``) instead of ``aiolimiter``, which cannot be
shared between processes.

redis-py's connection pools belong to the event loop that created them, so the backend keeps
one client per loop, closed when the last client of that loop closes (``detach``) or by
``REGISTRY.aclose()``. When Redis cannot be reached, the limiter falls back to the in-process
limiter for a few seconds and logs a warning: the process keeps its own quota, and a 429
caused by other processes still closes the route.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._endpoints import Quota
from ._ratelimit import (
    DEFAULT_MARGIN,
    DEFAULT_MAX_HOLD,
    GrantHook,
    LimiterStats,
    SlidingWindowLimiter,
    _Line,
    _park,
    _running_loop,
    _Waiter,
)
from .errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["KEY_PREFIX", "RedisBackend", "RedisLimiter", "redact_url"]

log = logging.getLogger("codegen_async.ratelimit")

KEY_PREFIX: Final = "codegen_async:rl:"
FALLBACK_SECONDS: Final = 5.0
_US: Final = 1_000_000

# Redis >= 5 replicates a script's effects, which lets it write after reading TIME; older
# servers need replicate_commands() for that (newer ones accept it and ignore it).
_NOW: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: slots (sorted set), closed (429 penalty), pace (smooth mode's next tick)
# ARGV: limit, hold_us, member, interval_us (0 in window mode)
# Returns {1, 0} for a slot taken, else {0, microseconds until the blocker goes away}.
ACQUIRE_LUA: Final = (
    _NOW
    + """
local closed = tonumber(redis.call('GET', KEYS[2]) or '0')
if closed > now then return {0, closed - now} end
local interval = tonumber(ARGV[4])
if interval > 0 then
  local tick = tonumber(redis.call('GET', KEYS[3]) or '0')
  if tick > now then return {0, tick - now} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local used = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[1])
if used >= limit then
  local first = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  return {0, tonumber(first[2]) - now}
end
local hold = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + hold, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(hold / 1000) + 1000)
if interval > 0 then
  redis.call('SET', KEYS[3], now + interval, 'PX', math.ceil(interval / 1000) + 1000)
end
return {1, 0}
"""
)

# KEYS: slots. ARGV: member, back_us (window + margin). The slot comes back back_us from now.
RELEASE_LUA: Final = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)

# KEYS: closed. ARGV: pause_us. Closes the route until now + pause_us (never shortens it).
PENALIZE_LUA: Final = (
    _NOW
    + """
local pause = tonumber(ARGV[1])
local closed = tonumber(redis.call('GET', KEYS[1]) or '0')
if now + pause > closed then
  redis.call('SET', KEYS[1], now + pause, 'PX', math.ceil(pause / 1000) + 1000)
end
return 1
"""
)


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.exceptions
    except ImportError as exc:
        raise ConfigurationError(
            "rate_limit_backend='redis://...' needs the redis package: "
            "pip install 'codegen-async[redis]'"
        ) from exc
    return redis


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for log lines and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@attrs.define
class _LoopClient:
    """The Redis client of one event loop, its scripts, and its background calls."""

    client: Redis
    acquire: AsyncScript
    release: AsyncScript
    penalize: AsyncScript
    users: int = 0
    tasks: set[asyncio.Task[Any]] = attrs.field(factory=set)
    closed: bool = False

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep ``task`` (a call in flight) until it ends; closing waits for it."""
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background on this loop, unless the client is closing."""
        if self.closed:
            coro.close()
            return
        self.track(asyncio.get_running_loop().create_task(coro))


class RedisBackend:
    """Connections to one Redis URL: one client per event loop, as redis-py requires."""

    def __init__(self, url: str) -> None:
        redis = _import_redis()
        self._redis = redis
        self.url = url
        self.errors: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError,
            OSError,
            asyncio.TimeoutError,
        )
        self._lock = threading.Lock()
        self._clients: dict[asyncio.AbstractEventLoop, _LoopClient] = {}

    def __repr__(self) -> str:
        return f"<RedisBackend {redact_url(self.url)} loops={len(self._clients)}>"

    def state(self) -> _LoopClient:
        """The running loop's client (made on first use; connections open lazily)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._clients.get(loop)
            if state is None:
                client = self._redis.asyncio.Redis.from_url(
                    self.url, socket_connect_timeout=2.0, socket_timeout=5.0
                )
                state = _LoopClient(
                    client,
                    client.register_script(ACQUIRE_LUA),
                    client.register_script(RELEASE_LUA),
                    client.register_script(PENALIZE_LUA),
                )
                self._clients[loop] = state
            return state

    def attach(self) -> None:
        """One more client of the running loop uses this backend."""
        self.state().users += 1

    async def detach(self) -> None:
        """One client of the running loop is done; the last one closes the loop's client."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._clients.get(loop)
            if state is None:
                return
            state.users -= 1
            if state.users > 0:
                return
            del self._clients[loop]
        await self._close(state)

    async def aclose(self) -> None:
        """Close every loop's client: this loop's now, others' on their own loop."""
        running = asyncio.get_running_loop()
        with self._lock:
            states = list(self._clients.items())
            self._clients.clear()
        for loop, state in states:
            if loop is running:
                await self._close(state)
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._close(state), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(future), 5.0)
            else:
                log.debug("redis client of a stopped event loop dropped without closing")

    @staticmethod
    async def _close(state: _LoopClient) -> None:
        state.closed = True
        # Wait only for calls not yet done: a finished task leaves ``tasks`` in a done
        # callback that needs one more turn of the loop, and since Python 3.12 awaiting
        # ``gather`` of finished tasks does not yield to the loop, so looping on
        # ``while state.tasks`` would spin forever without that callback ever running.
        while pending := [task for task in state.tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
        await state.client.aclose()


class RedisLimiter:
    """The sliding-window limiter of one route and credential, kept in Redis.

    Same protocol and guarantees as :class:`~codegen_async._ratelimit.SlidingWindowLimiter`
    (``smooth=True`` adds even pacing), shared by every process that uses the same Redis
    server, base URL and token.

    Args:
        backend: The Redis connections.
        fingerprint: One-way name of the base URL and token (the key's hash tag).
        name: Operation name (part of the key, and of log lines).
        quota: The limit and window to keep.
        smooth: One slot every ``(window + margin) / limit`` at most.
        margin: Seconds added to the window.
        max_hold: Seconds after which the slot of a request that never reported back (its
            process died) comes back anyway.
        poll: Seconds between looks while every slot is held by requests still in flight
            elsewhere; default window / 50, between 2 ms and 250 ms.
        on_grant: Called with ``time.monotonic()`` of every grant in this process.
    """

    def __init__(
        self,
        backend: RedisBackend,
        fingerprint: str,
        name: str,
        quota: Quota,
        *,
        smooth: bool = False,
        margin: float = DEFAULT_MARGIN,
        max_hold: float = DEFAULT_MAX_HOLD,
        poll: float | None = None,
        on_grant: GrantHook | None = None,
    ) -> None:
        if quota.limit < 1 or not quota.window > 0:
            raise ValueError(f"a quota needs limit >= 1 and window > 0, got {quota}")
        self.quota = quota
        self.name = name
        self.smooth = smooth
        base = f"{KEY_PREFIX}{{{fingerprint}}}:{name}"
        self.slots_key = f"{base}:{quota.limit}/{quota.window:.6g}s"
        self.closed_key = f"{base}:closed"
        self.pace_key = f"{self.slots_key}:pace"
        self._back_us = math.ceil((quota.window + margin) * _US)
        self._hold_us = math.ceil((quota.window + margin + max_hold) * _US)
        self._interval_us = math.ceil(self._back_us / quota.limit) if smooth else 0
        self._poll = poll if poll is not None else min(max(quota.window / 50, 0.002), 0.25)
        self._on_grant = on_grant
        self._backend = backend
        self._lock = threading.Lock()
        self._line = _Line()
        self._held: deque[str | None] = deque()  # members in flight; None: a fallback slot
        self._blocked_until = -math.inf
        self._fallback = SlidingWindowLimiter(quota, margin=margin, name=name, max_hold=max_hold)
        self._fallback_until = -math.inf
        self._grants = 0
        self._waits = 0
        self._waited = 0.0
        self._penalties = 0

    def __repr__(self) -> str:
        return f"<RedisLimiter {self.name} {self.quota} smooth={self.smooth} {self._backend!r}>"

    @property
    def keys(self) -> tuple[str, str, str]:
        """The Redis keys of this route: slots, 429 penalty, smooth pace."""
        return (self.slots_key, self.closed_key, self.pace_key)

    @property
    def waited_seconds(self) -> float:
        """Total seconds callers of this process spent waiting for this limiter."""
        return self._waited

    @property
    def waits(self) -> int:
        """How many acquisitions in this process had to wait."""
        return self._waits

    def stats(self) -> LimiterStats:
        """A snapshot of this process's counters for this route."""
        with self._lock:
            return LimiterStats(self._grants, self._waits, self._waited, self._penalties)

    # --- acquire ---------------------------------------------------------------------------
    async def acquire(self) -> float:
        """Wait for a slot (first come, first served in this process); return seconds waited."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop)
        start = time.monotonic()
        quota_window = self.quota.window
        with self._lock:
            is_head = self._line.join(waiter)
            future = waiter.arm()
        timeout = 0.0 if is_head else quota_window
        waited = False
        try:
            while True:
                if timeout != 0.0:
                    # Re-check the line only after parking: on the first pass the join
                    # above has just said where this waiter stands.
                    waited = True
                    await _park(loop, future, timeout)
                    with self._lock:
                        self._line.prune()
                        is_head = self._line.head is waiter
                        future = waiter.arm()
                if not is_head:
                    # Look up once a window, in case the head's loop died under it.
                    timeout = self.quota.window
                    continue
                pause = self._blocked_until - time.monotonic()
                if pause > 0:
                    timeout = pause
                    continue
                granted, seconds = await self._ask(loop)
                if granted:
                    waited = waited or seconds > 0
                    break
                timeout = max(seconds, 0.0005)
        except BaseException:
            with self._lock:
                self._line.leave(waiter)
            raise
        now = time.monotonic()
        seconds = now - start if waited else 0.0
        with self._lock:
            self._grants += 1
            if waited:
                self._waits += 1
                self._waited += seconds
            self._line.pop_head()
        if self._on_grant is not None:
            try:
                self._on_grant(now)
            except Exception:  # a metrics hook must not break rate limiting
                log.exception("rate limit %s: on_grant hook failed", self.name)
        if waited:
            log.debug("rate limit %s (%s, redis): waited %.3fs", self.name, self.quota, seconds)
        return seconds

    async def _ask(self, loop: asyncio.AbstractEventLoop) -> tuple[bool, float]:
        """Try to take a slot.

        Returns ``(True, seconds waited on the fallback limiter)`` when a slot was taken,
        else ``(False, seconds to wait before asking again)``.
        """
        if time.monotonic() < self._fallback_until:
            waited = await self._fallback.acquire()
            with self._lock:
                self._held.append(None)
            return True, waited
        member = uuid.uuid4().hex
        try:
            state = self._backend.state()
            call = loop.create_task(self._eval_acquire(state, member))
            state.track(call)
            try:
                granted, wait_us = await asyncio.shield(call)
            except asyncio.CancelledError:
                # The script may still run and take a slot nobody will use: give it back.
                call.add_done_callback(functools.partial(self._after_cancel, state, member))
                raise
        except self._backend.errors as exc:
            self._fallback_until = time.monotonic() + FALLBACK_SECONDS
            log.warning(
                "rate limit %s: redis at %s failed (%s: %s); limiting in this process only "
                "for %.0fs",
                self.name,
                redact_url(self._backend.url),
                type(exc).__name__,
                exc,
                FALLBACK_SECONDS,
            )
            return await self._ask(loop)
        if granted:
            with self._lock:
                self._held.append(member)
            return True, 0.0
        if wait_us > self._back_us:
            # The slot to wait for is held by a request still in flight (maybe in another
            # process): its answer can come any time, so look again soon.
            return False, min(wait_us / _US, self._poll)
        return False, wait_us / _US

    async def _eval_acquire(self, state: _LoopClient, member: str) -> tuple[bool, int]:
        reply = await state.acquire(
            keys=[self.slots_key, self.closed_key, self.pace_key],
            args=[self.quota.limit, self._hold_us, member, self._interval_us],
        )
        granted, wait_us = reply
        return bool(int(granted)), int(wait_us)

    def _after_cancel(
        self, state: _LoopClient, member: str, call: asyncio.Task[tuple[bool, int]]
    ) -> None:
        if call.cancelled() or call.exception() is not None or not call.result()[0]:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: the lease covers it
            state.spawn(self._give_back(state, member))

    async def _give_back(self, state: _LoopClient, member: str) -> None:
        try:
            await state.client.zrem(self.slots_key, member)
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not give a slot back: %s", self.name, exc)
        with self._lock:
            self._line.wake_head()

    # --- release and penalize ----------------------------------------------------------------
    def release(self) -> None:
        """The oldest request of this process on this route is over; its window starts now."""
        with self._lock:
            if not self._held:
                return
            member = self._held.popleft()
        if member is None:
            self._fallback.release()
            with self._lock:
                self._line.wake_head()
            return
        if _running_loop() is None:
            return  # no loop to talk to Redis from: the slot comes back after max_hold
        state = self._backend.state()
        state.spawn(self._release_remote(state, member))

    async def _release_remote(self, state: _LoopClient, member: str) -> None:
        try:
            await state.release(keys=[self.slots_key], args=[member, self._back_us])
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not release a slot: %s", self.name, exc)
        with self._lock:
            self._line.wake_head()

    def penalize(self, seconds: float) -> None:
        """Close this route for ``seconds``, for every process on this token."""
        seconds = max(seconds, 0.0)
        with self._lock:
            self._penalties += 1
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)
        self._fallback.penalize(seconds)
        log.debug("rate limit %s: closed for %.3fs after a 429", self.name, seconds)
        if _running_loop() is not None:
            state = self._backend.state()
            state.spawn(self._penalize_remote(state, seconds))

    async def _penalize_remote(self, state: _LoopClient, seconds: float) -> None:
        try:
            await state.penalize(keys=[self.closed_key], args=[math.ceil(seconds * _US)])
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not share a 429 pause: %s", self.name, exc)
