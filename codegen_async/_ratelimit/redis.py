"""Rate limits shared through Redis by every process and host that uses one token.

Selected with ``rate_limit_backend="redis://HOST:PORT/DB"`` (or ``CODEGEN_RATE_LIMIT_BACKEND``);
needs the ``redis`` extra (``pip install 'codegen-async[redis]'``).

Each route of each token has a sorted set of the slots in use, scored by the time (in
microseconds, on the Redis server's clock) at which each slot comes back: ``now + hold``
while its request is in flight, ``answer + window + margin`` once the answer arrived. One
Lua script checks the route's 429 penalty, drops the slots that came back, counts the rest
and takes a slot, atomically; it reads the time with ``TIME`` so that hosts whose clocks
disagree still agree on the windows. A slot whose process died comes back after ``hold``
(``window + margin + max_hold``). Keys look like ``codegen_async:rl:{<sha256 of the
token>}:<operation>``: never the token itself, and one set per token and route whatever
each client's mode or quota (every caller checks its own limit against it). The braces are
a Redis Cluster hash tag, so every key of one token lives on one shard.

Another program may write to these keys: a pause, tick or slot further ahead than any caller
of this SDK sets (:data:`HORIZON`), or a pause that is not a number, is dropped by the script
rather than obeyed (it would block the route in every process, for good without expiry);
a key of the wrong type is deleted when an acquire fails on it (``WRONGTYPE``).

A stalled Redis must not leak slots: every acquire script carries the caller's deadline
(when the socket timeout gives up on it), in Redis's clock, and grants nothing once
``TIME`` is past it -- a script queued behind a stall runs when Redis resumes, long after
its caller fell back. The slot names of calls that failed are also removed (``ZREM``) once
Redis answers again. A caller with a deadline does not wait on a stalled Redis past it: it
leaves the line (``QuotaWaitExceeded``) while its ask runs on; if the ask then fails, the
route falls back as usual, and a slot it took after all is given back.

In one process, callers queue in the route's first-come line (``line.py``) and only the
one whose turn it is talks to Redis; across processes the order is whoever asks first once
a slot comes back. The smooth mode adds a "next tick" key to the same script (one slot every
``(window + margin) / limit``).

redis-py's connection pools belong to the event loop that created them, so the backend keeps
one client per loop, closed when the last client of that loop closes (``detach``), when the
loop is gone, or by ``REGISTRY.aclose()``.

When Redis cannot be reached, the limiter falls back to an in-process window for a few
seconds (then asks Redis again) and logs a warning. Each process then keeps its *share*: the
quota divided by the processes Redis last saw on the token (a ``peers`` sorted set the
acquire script keeps, by last use), at least one request per window; a 429 meanwhile halves
that share again (others use the quota too) and, as always, closes the route until
``Retry-After``. Four processes that each kept the whole quota drew 157 429s in
``python -m benchmarks.redis_fallback`` (27 calls failed); with shares, 10-12 (none failed).
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
import weakref
from collections import deque
from collections.abc import Coroutine
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._endpoints import Quota
from .._waiting import drop_outcome, finish_anyway
from ..errors import ConfigurationError
from .limiter import LimiterStats, QuotaWaitExceeded
from .line import Line, running_loop
from .quotas import DEFAULT_MARGIN, DEFAULT_MAX_HOLD, check_quota
from .window import GrantHook, RouteWindow

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["KEY_PREFIX", "RedisBackend", "RedisLimiter", "redact_url"]

log = logging.getLogger("codegen_async.ratelimit")

KEY_PREFIX: Final = "codegen_async:rl:"
FALLBACK_SECONDS: Final = 5.0
SOCKET_TIMEOUT: Final = 5.0
CLOSE_WAIT: Final = 0.5
"""Longest a closing client waits for its Redis calls in flight (a slot's release, a quota
ask) before cancelling them: Redis is an optional backend, and a stalled one would hold
``aclose()`` for the whole socket timeout. A slot not given back returns by ``max_hold``."""
HORIZON: Final = 86_400.0
"""Seconds ahead beyond which a route's pause, tick or slot in Redis cannot be one this SDK
wrote (its pauses end within five minutes or a window, its slots within ``hold``; another
caller's quota may have a longer window, hence a day, or twice this caller's ``hold``)."""
_US: Final = 1_000_000

# Redis >= 5 replicates a script's effects, which lets it write after reading TIME; older
# servers need replicate_commands() for that (newer ones accept it and ignore it).
_NOW: Final = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: slots (sorted set), closed (429 penalty), pace (smooth mode's next tick), peers
# (the token's processes, by last use)
# ARGV: limit, hold_us, member, interval_us (0 in window mode), deadline_us (Redis clock),
#       peer (this process), peer_ttl_us, horizon_us
# A pause, tick or slot ending later than now + horizon_us (beyond anything a caller of this
# SDK sets: see HORIZON) was written by another program; it would block the route for every
# process for as long as it says (for good, without expiry), so it is dropped. So is a
# pause or tick that is not a number.
# Returns {granted, wait_us, now_us, held, peers}: {1, 0, ...} for a slot taken; {0, -1, ...}
# past the deadline (nothing taken, nothing written); else wait_us until the blocker goes
# away, held = 1 when the blocker is a slot (maybe still in flight), 0 for a pause or tick.
# peers: how many processes used the token lately (each keeps its share while Redis is down).
ACQUIRE_LUA: Final = (
    _NOW
    + """
if now > tonumber(ARGV[5]) then return {0, -1, now, 0, 0} end
local peer_ttl = tonumber(ARGV[7])
redis.call('ZADD', KEYS[4], now, ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - peer_ttl)
redis.call('PEXPIRE', KEYS[4], math.ceil(peer_ttl / 1000))
local peers = redis.call('ZCARD', KEYS[4])
local horizon = now + tonumber(ARGV[8])
local closed = tonumber(redis.call('GET', KEYS[2]) or '0') or horizon + 1
if closed > horizon then redis.call('DEL', KEYS[2]); closed = 0 end
if closed > now then return {0, closed - now, now, 0, peers} end
local interval = tonumber(ARGV[4])
if interval > 0 then
  local tick = tonumber(redis.call('GET', KEYS[3]) or '0') or horizon + 1
  if tick > horizon then redis.call('DEL', KEYS[3]); tick = 0 end
  if tick > now then return {0, tick - now, now, 0, peers} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', horizon), '+inf')
local used = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[1])
if used >= limit then
  local first = redis.call('ZRANGE', KEYS[1], used - limit, used - limit, 'WITHSCORES')
  return {0, tonumber(first[2]) - now, now, 1, peers}
end
local hold = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + hold, ARGV[3])
local ttl = math.ceil(hold / 1000) + 1000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
if interval > 0 then
  redis.call('SET', KEYS[3], now + interval, 'PX', math.ceil(interval / 1000) + 1000)
end
return {1, 0, now, 0, peers}
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

# KEYS: slots, closed, pace, peers. Deletes each that holds another type than this SDK writes
# (another program wrote it): every acquire would fail on it (WRONGTYPE) and each process
# would limit alone for good. Returns how many it deleted.
REPAIR_LUA: Final = """
local expected = {'zset', 'string', 'string', 'zset'}
local deleted = 0
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= expected[i] then
    redis.call('DEL', key)
    deleted = deleted + 1
  end
end
return deleted
"""

# The deadline of the acquire running in this task (the line calls ``claim`` without it).
_DEADLINE: ContextVar[float | None] = ContextVar("codegen_async_redis_deadline", default=None)

_SECRET_QUERY: Final = frozenset({"password", "pass", "pwd", "secret", "token", "auth"})


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
    """``url`` with every credential replaced by ``***``, for log lines and reprs.

    Covers the password of the user-info part (``redis://user:pw@host``), a user-info
    with no colon (``redis://pw@host``, which redis-py reads as a password), and
    password-like query parameters (``?password=...``, also on ``unix://`` URLs).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"
    if query:
        pairs = (pair.partition("=") for pair in query.split("&"))
        query = "&".join(
            f"{key}={'***' if key.lower() in _SECRET_QUERY else value}" if eq else key
            for key, eq, value in pairs
        )
    return f"{scheme}{sep}{netloc}{slash}{path}{question}{query}{hash_mark}{fragment}"


@attrs.define(eq=False)
class _LoopClient:
    """The Redis client of one event loop, its scripts, and its background calls."""

    client: Redis
    acquire: AsyncScript
    release: AsyncScript
    penalize: AsyncScript
    leases: dict[int, weakref.finalize[Any, Any]] = attrs.field(factory=dict)  # users
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
    """Connections to one Redis URL: one client per event loop, as redis-py requires.

    Args:
        url: The Redis URL (credentials never shown: see :func:`redact_url`).
        socket_timeout: Seconds after which a Redis call is given up (and the limiter
            falls back to this process for a few seconds).
    """

    def __init__(self, url: str, *, socket_timeout: float = SOCKET_TIMEOUT) -> None:
        redis = _import_redis()
        self._redis = redis
        self.url = url
        self.socket_timeout = socket_timeout
        self.errors: tuple[type[BaseException], ...] = (
            redis.exceptions.RedisError,
            OSError,
            asyncio.TimeoutError,
        )
        self.clock_offset = 0.0  # Redis's clock minus ours, in seconds (learnt from replies)
        self.peer = uuid.uuid4().hex[:16]  # this process among those on one token
        self.peers: dict[str, int] = {}  # token fingerprint -> processes Redis saw lately
        self._closing: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()
        # Weak keys: the client of a loop that was closed and dropped goes with it.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"<RedisBackend {redact_url(self.url)} loops={len(self._clients)}>"

    def state(self) -> _LoopClient:
        """The running loop's client (made on first use; connections open lazily)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._clients.get(loop)
            if state is None:
                client = self._redis.asyncio.Redis.from_url(
                    self.url, socket_connect_timeout=2.0, socket_timeout=self.socket_timeout
                )
                state = _LoopClient(
                    client,
                    client.register_script(ACQUIRE_LUA),
                    client.register_script(RELEASE_LUA),
                    client.register_script(PENALIZE_LUA),
                )
                self._clients[loop] = state
            return state

    def attach(self, owner: object) -> None:
        """``owner`` (a client) of the running loop uses this backend until it calls
        :meth:`detach`, or until it is garbage collected without doing so."""
        loop = asyncio.get_running_loop()
        state = self.state()
        key = id(owner)
        if key not in state.leases:
            state.leases[key] = weakref.finalize(owner, self._owner_lost, weakref.ref(loop), key)

    def _owner_lost(self, loop_ref: weakref.ref[asyncio.AbstractEventLoop], key: int) -> None:
        # A client was dropped without closing (this runs in the garbage collector, maybe
        # while this thread holds the lock: no lock here). Its share goes at once, before
        # its id can be reused; the loop's client is closed on its own loop if unused.
        loop = loop_ref()
        state = None if loop is None else self._clients.get(loop)
        if loop is None or state is None:
            return
        state.leases.pop(key, None)
        if not state.leases and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._close_unused, loop)

    def _close_unused(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            state = self._clients.get(loop)
            if state is None or state.leases:
                return
            del self._clients[loop]
        task = loop.create_task(self._close(state))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _drop_lease(self, loop: asyncio.AbstractEventLoop, key: int) -> _LoopClient | None:
        """One user of ``loop`` is gone; the loop's client if that was the last one."""
        with self._lock:
            state = self._clients.get(loop)
            if state is None:
                return None
            lease = state.leases.pop(key, None)
            if lease is not None:
                lease.detach()
            if state.leases:
                return None
            del self._clients[loop]
            return state

    async def detach(self, owner: object) -> None:
        """``owner`` of the running loop is done; the last one closes the loop's client."""
        state = self._drop_lease(asyncio.get_running_loop(), id(owner))
        if state is not None:  # a cancelled caller (a bounded aclose) must not cut it short
            await finish_anyway(self._close(state), "codegen-async redis close")

    async def aclose(self) -> None:
        """Close every loop's client: this loop's now, others' on their own loop."""
        running = asyncio.get_running_loop()
        with self._lock:
            states = list(self._clients.items())
            self._clients.clear()
        for loop, state in states:
            if loop is running:
                await finish_anyway(self._close(state), "codegen-async redis close")
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(self._close(state), loop)
                # asyncio.wait, not wait_for: that lost a cancellation of this caller on
                # 3.10/3.11 as the close completed, and cut the close short at its limit.
                closing = asyncio.wrap_future(future)
                closing.add_done_callback(drop_outcome)
                await asyncio.wait((closing,), timeout=5.0)
            else:
                log.debug("redis client of a stopped event loop dropped without closing")

    @staticmethod
    async def _close(state: _LoopClient) -> None:
        """Close the loop's client: its calls in flight get :data:`CLOSE_WAIT` to end, then
        are cancelled; closing the connections ends any whose cancellation redis-py lost
        (CPython gh-86296), and they are awaited (bounded again) so none is left pending."""
        state.closed = True
        # Only calls not yet done: a finished task leaves ``tasks`` in a done callback that
        # needs one more turn of the loop (``spawn`` adds none once ``closed`` is set).
        pending = {task for task in state.tasks if not task.done()}
        if pending:
            done, pending = await asyncio.wait(pending, timeout=CLOSE_WAIT)
            for task in done:
                drop_outcome(task)
            for task in pending:
                task.cancel()
        try:
            await state.client.aclose()
        finally:
            if pending:
                done, stuck = await asyncio.wait(pending, timeout=CLOSE_WAIT)
                for task in done:
                    drop_outcome(task)
                if stuck:  # never seen: the socket they read is closed
                    log.debug("%d Redis call(s) still running after close", len(stuck))


class RedisLimiter:
    """The sliding-window limiter of one route and token, kept in Redis.

    Same protocol and guarantees as :class:`~.window.SlidingWindowLimiter` (``smooth=True``
    adds even pacing), shared by every process that uses the same Redis server and token.

    Args:
        backend: The Redis connections.
        fingerprint: One-way name of the token (the key's hash tag).
        name: Operation name (part of the key, and of log lines).
        quota: The limit and window this caller keeps.
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
        check_quota(quota)
        self.quota = quota
        self.name = name
        self.smooth = smooth
        self.slots_key = f"{KEY_PREFIX}{{{fingerprint}}}:{name}"
        self.closed_key = f"{self.slots_key}:closed"
        self.pace_key = f"{self.slots_key}:pace"
        self.peers_key = f"{KEY_PREFIX}{{{fingerprint}}}:peers"  # one per token
        self._fingerprint = fingerprint
        self._peer_ttl_us = math.ceil(max(2 * (quota.window + margin), 10.0) * _US)
        self._back_us = math.ceil((quota.window + margin) * _US)
        self._hold_us = math.ceil((quota.window + margin + max_hold) * _US)
        self._horizon_us = max(2 * self._hold_us, HORIZON * _US)
        self._interval_us = math.ceil(self._back_us / quota.limit) if smooth else 0
        self._poll = poll if poll is not None else min(max(quota.window / 50, 0.002), 0.25)
        self._on_grant = on_grant
        self._backend = backend
        self._lock = threading.Lock()
        self._line = Line(time.monotonic, self._lock)
        self._held: deque[str | None] = deque()  # members in flight; None: a fallback slot
        # Members of failed calls, maybe granted after all; older ones have expired anyway.
        self._orphans: deque[str] = deque(maxlen=64)
        self._blocked_until = -math.inf
        self._fallback = RouteWindow(quota, margin=margin, name=name, max_hold=max_hold)
        self._fallback_until = -math.inf
        self._grants = 0
        self._waits = 0
        self._waited = 0.0
        self._penalties = 0

    def __repr__(self) -> str:
        return f"<RedisLimiter {self.name} {self.quota} smooth={self.smooth} {self._backend!r}>"

    @property
    def keys(self) -> tuple[str, str, str, str]:
        """The Redis keys of this route: slots, 429 penalty, smooth pace, peers."""
        return (self.slots_key, self.closed_key, self.pace_key, self.peers_key)

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

    def idle(self) -> bool:
        """Nothing in flight, nobody waiting, no fallback history: forgetting it loses
        nothing (the shared history lives in Redis)."""
        with self._lock:
            busy = self._held or self._line.live or self._orphans
        return not busy and self._fallback.idle()

    # --- acquire ---------------------------------------------------------------------------
    async def acquire(self, deadline: float | None = None) -> float:
        """Wait for a slot (first come, first served in this process); return seconds waited.

        Raises:
            QuotaWaitExceeded: no slot before ``deadline`` (a ``time.monotonic()``
                instant); nothing was taken.
        """
        reset = _DEADLINE.set(deadline)
        try:
            waited = await self._line.wait(self, deadline)
        finally:
            _DEADLINE.reset(reset)
        if waited:
            with self._lock:
                self._waits += 1
                self._waited += waited
            log.debug("rate limit %s (%s, redis): waited %.3fs", self.name, self.quota, waited)
        return waited

    def estimate_locked(self, now: float, ahead: int) -> float:
        """A lower bound of the wait: the local 429 pause (Redis knows the rest)."""
        return max(self._blocked_until - now, 0.0)

    async def claim(self) -> tuple[float, float]:
        """Try to take a slot (called by the line when it is this caller's turn)."""
        pause = self._blocked_until - time.monotonic()
        if pause > 0:
            return pause, pause
        if time.monotonic() < self._fallback_until:
            return self._claim_fallback()
        member = uuid.uuid4().hex
        try:
            reply = await self._ask(member, _DEADLINE.get())
        except self._backend.errors as exc:
            self._redis_failed(member, exc)
            return self._claim_fallback()
        if self._orphans:
            self._forget_orphans()
        granted, wait_us, held = reply
        if granted:
            self._granted(member)
            return 0.0, 0.0
        if wait_us < 0:  # past the deadline: Redis was slow to answer; ask again
            return 0.0005, 0.0
        at_least = min(wait_us, self._back_us) / _US
        if held and wait_us > self._back_us:
            # The slot to wait for is held by a request still in flight (maybe in another
            # process): its answer can come any time, so look again soon.
            return min(wait_us / _US, self._poll), at_least
        return wait_us / _US, at_least

    def _redis_failed(self, member: str, exc: BaseException) -> None:
        """The ask for ``member`` failed: limit in this process for a while."""
        with self._lock:
            self._orphans.append(member)  # its script may still run once Redis is back
        if time.monotonic() >= self._fallback_until + FALLBACK_SECONDS:
            self._fallback_share()  # a new outage, not the next look during this one
        self._fallback_until = time.monotonic() + FALLBACK_SECONDS
        log.warning(
            "rate limit %s: redis at %s failed (%s: %s); limiting in this process only for %.0fs",
            self.name,
            redact_url(self._backend.url),
            type(exc).__name__,
            exc,
            FALLBACK_SECONDS,
        )
        if "WRONGTYPE" in str(exc) and running_loop() is not None:
            state = self._backend.state()
            state.spawn(self._repair(state))

    async def _repair(self, state: _LoopClient) -> None:
        """Delete this route's keys of the wrong type: the next ask (after the fallback
        period) uses Redis again."""
        try:
            deleted = await state.client.eval(REPAIR_LUA, len(self.keys), *self.keys)
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not repair its keys: %s", self.name, exc)
            return
        if deleted:
            log.warning(
                "rate limit %s: %d of its Redis keys held the wrong type (not written by this "
                "SDK); deleted them",
                self.name,
                deleted,
            )

    def _fallback_share(self) -> None:
        """Keep this process's share of the quota while Redis is down: the limit divided
        by the processes Redis last saw on the route (at least one request per window)."""
        peers = self._backend.peers.get(self._fingerprint, 1)
        share = max(1, self.quota.limit // peers)
        self._fallback.set_limit(share)
        if share < self.quota.limit:
            log.info(
                "rate limit %s: %d processes share the quota; %d per window here until redis "
                "is back",
                self.name,
                peers,
                share,
            )

    def _claim_fallback(self) -> tuple[float, float]:
        window = self._fallback
        with window.lock:
            now = window.clock()
            delay = window.delay_locked(now)
            if delay > 0.0:
                return delay, window.at_least_locked(now)
            window.grant_locked(now)
        self._granted(None)
        return 0.0, 0.0

    def _granted(self, member: str | None) -> None:
        with self._lock:
            self._held.append(member)
            self._grants += 1
        if self._on_grant is not None:
            try:
                self._on_grant(time.monotonic())
            except Exception:  # a metrics hook must not break rate limiting
                log.exception("rate limit %s: on_grant hook failed", self.name)

    async def _ask(self, member: str, deadline: float | None) -> tuple[bool, int, bool]:
        """Run the acquire script for ``member``; a cancelled call gives its slot back.

        Raises:
            QuotaWaitExceeded: Redis did not answer before ``deadline`` (a monotonic
                instant); the script runs on, and a slot it takes is given back.
        """
        loop = asyncio.get_running_loop()
        state = self._backend.state()
        call = loop.create_task(self._eval_acquire(state, member))
        state.track(call)
        try:
            if deadline is None:
                return await asyncio.shield(call)
            done, _ = await asyncio.wait((call,), timeout=max(deadline - time.monotonic(), 0.0))
        except asyncio.CancelledError:
            # The script may still run and take a slot nobody will use: give it back.
            call.add_done_callback(functools.partial(self._after_cancel, state, member))
            raise
        if done:
            return call.result()
        call.add_done_callback(functools.partial(self._after_deadline, state, member))
        raise QuotaWaitExceeded(0.0, self.name, backend_silent=True)

    async def _eval_acquire(self, state: _LoopClient, member: str) -> tuple[bool, int, bool]:
        backend = self._backend
        # The script refuses to grant once the socket timeout has given up on this call:
        # a script queued behind a stalled Redis must not take a slot nobody will use.
        sent = time.time()
        deadline_us = math.floor((sent + backend.clock_offset + backend.socket_timeout) * _US)
        reply = await state.acquire(
            keys=[self.slots_key, self.closed_key, self.pace_key, self.peers_key],
            args=[
                self.quota.limit,
                self._hold_us,
                member,
                self._interval_us,
                deadline_us,
                backend.peer,
                self._peer_ttl_us,
                self._horizon_us,
            ],
        )
        granted, wait_us, now_us, held, peers = (int(x) for x in reply)
        backend.clock_offset = now_us / _US - (sent + time.time()) / 2
        if peers > 0:
            backend.peers[self._fingerprint] = peers
        return bool(granted), wait_us, bool(held)

    def _after_cancel(
        self, state: _LoopClient, member: str, call: asyncio.Task[tuple[bool, int, bool]]
    ) -> None:
        if call.cancelled() or call.exception() is not None or not call.result()[0]:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing: the lease covers it
            state.spawn(self._give_back(state, [member]))

    def _after_deadline(
        self, state: _LoopClient, member: str, call: asyncio.Task[tuple[bool, int, bool]]
    ) -> None:
        # The caller left at its deadline: a failed ask still means Redis is in trouble.
        if call.cancelled():
            return
        exc = call.exception()
        if exc is None:
            self._after_cancel(state, member, call)
        elif isinstance(exc, self._backend.errors):
            self._redis_failed(member, exc)

    def _forget_orphans(self) -> None:
        with self._lock:
            members = list(self._orphans)
            self._orphans.clear()
        if members:
            state = self._backend.state()
            state.spawn(self._give_back(state, members))

    async def _give_back(self, state: _LoopClient, members: list[str]) -> None:
        try:
            await state.client.zrem(self.slots_key, *members)
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not give a slot back: %s", self.name, exc)
        with self._lock:
            self._line.wake_locked()

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
                self._line.wake_locked()
            return
        if running_loop() is None:
            return  # no loop to talk to Redis from: the slot comes back after max_hold
        state = self._backend.state()
        state.spawn(self._release_remote(state, member))

    async def _release_remote(self, state: _LoopClient, member: str) -> None:
        try:
            await state.release(keys=[self.slots_key], args=[member, self._back_us])
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not release a slot: %s", self.name, exc)
        with self._lock:
            self._line.wake_locked()

    def penalize(self, seconds: float) -> None:
        """Close this route for ``seconds``, for every process on this token."""
        seconds = max(seconds, 0.0)
        with self._lock:
            self._penalties += 1
            self._blocked_until = max(self._blocked_until, time.monotonic() + seconds)
        self._fallback.penalize(seconds)
        if time.monotonic() < self._fallback_until:
            # Limiting alone, and still the server says no: others share the quota that
            # Redis did not know of. Halve this process's share (at least one per window).
            self._fallback.set_limit(max(1, self._fallback.limit // 2))
        log.debug("rate limit %s: closed for %.3fs after a 429", self.name, seconds)
        if running_loop() is not None:
            state = self._backend.state()
            state.spawn(self._penalize_remote(state, seconds))

    async def _penalize_remote(self, state: _LoopClient, seconds: float) -> None:
        try:
            await state.penalize(keys=[self.closed_key], args=[math.ceil(seconds * _US)])
        except self._backend.errors as exc:
            log.debug("rate limit %s: could not share a 429 pause: %s", self.name, exc)
