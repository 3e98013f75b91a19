"""Fleet-wide run watching: every process on one token shares one poller, through Redis.

With a Redis rate-limit backend, each process still runs its own waits, but not its own
polling. A :class:`FleetWatcher` (the client's :class:`RunWatcher` then) does this, in one
background task per process while it has waits:

* **Watched runs**: a sorted set ``watch`` of ``"org:run"`` scored by an expiry time (by
  Redis's clock, ``TIME``, learnt every ``ttl / 3``: hosts' clocks may disagree), which
  each process pushes forward for the runs it waits on (every ``ttl / 3``). A run nobody
  waits on any more drops out by itself.
* **Leader**: one process holds the ``lease`` key (taken by a script that sets it with an
  expiry when it is free, renewed every ``lease / 3`` with a compare-and-expire script by
  a task of its own: a slow step of the serving loop must not let it lapse).
  A lease key this SDK cannot have written (no expiry, one later than any lease's, another
  type) counts as free and is replaced, with a warning: otherwise it would stop the fleet for
  good (or for as long as it lasts). This was chosen over
  a liveness check by followers: it needs no new protocol and acts at the next attempt.
  The leader runs the client's ordinary poller
  (``_engine.RunPoller``, paced within ``poll_share`` of the quota, through the shared
  Redis limiter) over every watched run, with *relay* subscriptions: what it sees goes to
  Redis, not to a local wait. It reads the whole ``watch`` set every ``ttl / 3`` (and on
  taking the lease) to drop the runs nobody waits on, and only the newly registered ones
  when a process says in the stream that it registered some. When the lease lapses (the
  leader was killed), the next process to look takes it, within about one lease period.
* **Updates**: the leader writes each status change as ``last:org:run`` (kept an hour,
  pushed forward while a process waits on the run: it may not change for hours) and
  appends the run's name (only: the run is in ``last:``) to the stream ``updates``; every
  process reads the stream (``XREAD BLOCK``), reads ``last:`` of those of its own runs that
  changed, and delivers to its own waits. ``watch`` and ``updates`` expire ``ttl`` after
  their last use, so an idle token leaves only ``last:`` keys (an hour). A wait that
  starts late reads ``last:`` first; and every ``ttl / 3`` each process re-reads ``last:``
  for all its runs, so an update missed in a gap (a reconnect, a trimmed stream, a leader
  killed between the write and the append) still arrives. A *final* status read from
  ``last:`` is checked with one read of the run (it may have been resumed since, in any
  process), and a process takes from the stream only entries newer than its registration
  of the run. A run whose poll ended in an error (404, a malformed answer) is marked so,
  and each waiting process reads that run itself, to raise the client's own typed error.
* **Fallback**: when Redis fails, the process logs one warning and polls its own runs with
  its own poller; it tries Redis again every lease period (and when a wait starts), and
  once Redis answers (its runs registered, their stored status read) its waits move back
  to the fleet. A status already delivered is not delivered again. Data it cannot decode
  (another program wrote to the keys) is not a Redis failure: it is skipped (a status as
  "read it yourself") and logged once; the leader removes such ``watch`` members. A
  ``watch`` or ``updates`` key of another type (Redis says ``WRONGTYPE``) is deleted when
  the fallback starts, so the next try rejoins.
* **Lifecycle**: one task while there are waits; when the last ends, it stops at once and
  gives the lease back in the background (bounded by a lease), so neither a wait's timeout
  nor ``aclose`` (at most a second) is held by a stalled Redis. Its tasks await Redis
  through ``_waiting.cancellable``: redis-py's ``asyncio.wait_for`` around each send loses
  a cancellation on 3.10/3.11, and a serving task that ran on took the lease for good.

Keys: ``codegen_async:fleet:{<fingerprint>}:...``, a one-way name of the token *and* the
normalised base URL (clients of different servers never share a fleet: the leader reads
every run from its own server), never the token itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from .._converter import structure, unstructure
from .._waiting import cancellable, wait_event
from ..errors import ClientClosedError, CodegenError
from ..models import AgentRun
from ._engine import RunPoller
from ._source import RunSource
from ._subscription import DEFAULT_POLL_SHARE, RunEvent, Subscription

if TYPE_CHECKING:
    from .._ratelimit.redis import RedisBackend

__all__ = ["FLEET_PREFIX", "FleetSettings", "FleetWatcher", "fleet_fingerprint"]

log = logging.getLogger("codegen_async.polling")

FLEET_PREFIX: Final = "codegen_async:fleet:"
STREAM_LENGTH: Final = 10_000
"""Entries the update stream keeps (approximately); older ones are read from ``last:``."""
BLOCK_MS: Final = 50
"""Longest read of the stream: a new wait is registered within this (20 reads a second)."""
CLOSE_WAIT: Final = 1.0
"""Longest ``aclose`` waits to give the lease back (a stalled Redis: the lease lapses)."""
MAX_LEASE: Final = 5.0
"""The longest lease a process holds (seconds): a lease key expiring later is not ours."""
FOLLOW_SLACK_MS: Final = 1_000
"""How far processes' estimates of Redis's clock may disagree, for reading new runs only."""
LAST_TTL_MS: Final = 3_600_000
"""How long a run's last status is kept for waits that start late (one hour)."""

# Taking the lease repairs a key no process of ours could have written: one of another type,
# or a string without expiry or expiring later than any lease of ours could (ARGV[3]: the
# longest, ms). Such a key would otherwise stop the whole fleet for good, or for as long as
# it lasts (no lease ever free, nobody polling); a live leader's lease is left alone.
# Returns 0 (held by another), 1 (taken) or 2 (taken over a broken key).
_ACQUIRE_LUA: Final = """
local kind = redis.call('TYPE', KEYS[1])['ok']
local repaired = 0
if kind == 'string' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl ~= -1 and ttl <= tonumber(ARGV[3]) then return 0 end
  repaired = 1
elseif kind ~= 'none' then
  redis.call('DEL', KEYS[1])
  repaired = 1
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1 + repaired
"""
_RENEW_LUA: Final = """
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_DROP_LUA: Final = """
if redis.call('TYPE', KEYS[1])['ok'] == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class FleetSettings:
    """Timing of the fleet: ``lease`` seconds a leader holds its lease between renewals.

    Everything else follows from it: the lease is renewed every ``lease / 3``, the stream
    is read in blocks of ``lease / 4``, and a watched run stays in the set ``ttl`` seconds
    (10 leases, at least 10 s) after its process last said it waits on it.
    """

    def __init__(self, lease: float) -> None:
        if not 0 < lease <= MAX_LEASE:
            raise ValueError(f"lease must be in (0, {MAX_LEASE:g}] seconds, got {lease!r}")
        self.lease = lease
        self.ttl = max(10 * lease, 10.0)

    @classmethod
    def for_window(cls, window: float) -> FleetSettings:
        """A tenth of the ``get_run`` quota window (3 s documented), within 0.5-5 s."""
        return cls(min(max(window / 10, 0.5), MAX_LEASE))


def fleet_fingerprint(token: str, base_url: str) -> str:
    """A one-way name for a fleet: SHA-256 of the token and the normalised base URL.

    Scheme and host are compared without case and a default port is dropped, so spellings
    of one server share a fleet; different servers (or paths under one host) never do.
    """
    parts = urlsplit(base_url.strip().rstrip("/"))
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        netloc = f"[{host}]" if ":" in host else host
    else:
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    origin = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
    return hashlib.sha256(f"codegen-fleet\n{token}\n{origin}".encode()).hexdigest()[:32]


def _member(org_id: int, run_id: int) -> str:
    return f"{org_id}:{run_id}"


def _parse_member(member: bytes | str) -> tuple[int, int]:
    """``(org_id, run_id)`` of ``"org:run"``; ``ValueError`` if it is not one.

    Ids are non-negative, as the client checks them: a negative one (another program wrote
    it) would make the leader's poll raise ``ValueError``, which ends all of its waits.
    """
    text = member.decode() if isinstance(member, bytes) else member
    org, _, run = text.partition(":")
    key = int(org), int(run)
    if min(key) < 0:
        raise ValueError(f"negative id in {text!r}")
    return key


def _raw(run: AgentRun) -> str | None:
    return None if run.status is None else run.status.raw


async def _execute(pipe: Any) -> list[Any]:
    """Send a pipeline's commands and give its connection back (a task of its own runs
    this: see :func:`~codegen_async._waiting.cancellable`; only it uses the connection)."""
    async with pipe:
        result: list[Any] = await pipe.execute()
        return result


def _entry_id(raw: bytes | str) -> tuple[int, int]:
    """A stream entry id (``"<ms>-<seq>"``, made by Redis) in its order."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _decode_run(raw: bytes | str | None, run_id: int) -> AgentRun | bool | None:
    """A stored status of run ``run_id``: the run, ``True`` for "its poll failed", ``None``
    for nothing.

    Raises whatever undecodable data raises (``UnicodeDecodeError``, ``RecursionError``
    for deep nesting, ``ResponseShapeError``, ...), and ``ValueError`` for another run's
    status (a wait must never end with another run): the caller skips it.
    """
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text == "!":
        return True
    run: AgentRun = structure(json.loads(text), AgentRun)
    if run.id != run_id:
        raise ValueError(f"the stored status of run {run_id} is of run {run.id}")
    return run


class FleetWatcher:
    """A :class:`RunWatcher` shared by every process on one token through Redis.

    Args:
        engine: This process's poller: it polls for the fleet while this process leads,
            and for this process alone while Redis is unreachable.
        source: Where runs come from (to read a run whose fleet poll failed).
        backend: The Redis connections of the client's rate-limit backend.
        fingerprint: One-way name of the token and base URL (the keys' hash tag; see
            :func:`fleet_fingerprint`).
        settings: The lease and expiry timing.
    """

    def __init__(
        self,
        engine: RunPoller,
        source: RunSource,
        backend: RedisBackend,
        fingerprint: str,
        settings: FleetSettings,
    ) -> None:
        self._engine = engine
        self._source = source
        self._backend = backend
        self._settings = settings
        base = f"{FLEET_PREFIX}{{{fingerprint}}}:"
        self._lease_key = base + "lease"
        self._watch_key = base + "watch"
        self._stream_key = base + "updates"
        self._last_prefix = base + "last:"
        self.peer = uuid.uuid4().hex[:16]
        self._subs: dict[tuple[int, int], list[Subscription]] = {}
        self._new: set[tuple[int, int]] = set()  # to register and look up in last:
        self._relays: dict[tuple[int, int], Subscription] = {}  # the engine's, leader or local
        self._outbox: list[tuple[tuple[int, int], str, bool]] = []  # key, payload, final
        # The last status delivered, for the runs this process waits on (only those).
        self._seen: dict[tuple[int, int], AgentRun] = {}
        # Stream entry from which updates of a run are trusted: the one this process wrote
        # when it registered the run (None: not registered yet). Older entries may be of
        # before a resume_run; what they said is read from last: (and a final one checked).
        self._since: dict[tuple[int, int], tuple[int, int] | None] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._goodbyes: set[asyncio.Task[None]] = set()  # leases given back in the background
        self._wake: asyncio.Event | None = None
        self._leading = False
        self._lost = False  # the heartbeat found the lease gone: the loop drops the relays
        self._heartbeat: asyncio.Task[None] | None = None  # renews the lease while leading
        self._term = 0  # counts this process's leases: a late give-back drops only its own
        self._asking = False  # the lease script of this term is in flight
        self._clock_offset = 0.0  # Redis's clock minus ours, seconds (watch scores use Redis's)
        self._full_follow_at = 0.0  # monotonic time of the leader's next full read of watch
        self._followed_ms = 0.0  # Redis time (ms) of its last read of watch
        self._local = False  # Redis failed: this process polls its own runs
        self._warned = False
        self._warned_data = False
        self._closed = False
        self._stream_id = "0-0"

    def __repr__(self) -> str:
        role = "local" if self._local else "leader" if self._leading else "follower"
        return f"<FleetWatcher {role} runs={len(self._subs)}>"

    @property
    def leading(self) -> bool:
        """Whether this process polls for the fleet now."""
        return self._leading

    @property
    def local(self) -> bool:
        """Whether this process polls its own runs (Redis was unreachable)."""
        return self._local

    # --- RunWatcher ---------------------------------------------------------------------
    def subscribe(
        self,
        org_id: int,
        run_ids: Iterable[int],
        *,
        poll_interval: float | None = None,
        share: float = DEFAULT_POLL_SHARE,
    ) -> Subscription:
        """Watch runs through the fleet; same contract as ``RunPoller.subscribe``."""
        if self._closed:
            raise ClientClosedError("this client is closed; create a new one")
        sub = Subscription(org_id, run_ids, poll_interval, share)
        for run_id in sub.run_ids:
            key = (org_id, run_id)
            subs = self._subs.get(key)
            if subs is None:
                subs = self._subs[key] = []
                self._new.add(key)
                self._since[key] = None
                if self._local:
                    self._relay(key)
            elif key in self._seen:  # as the plain poller: the known status comes first
                sub.deliver(RunEvent(run_id, run=self._seen[key]))
            subs.append(sub)
        self._ensure_running()
        return sub

    async def release(self, sub: Subscription) -> None:
        """Stop watching a subscription's runs (they expire from the fleet's set)."""
        sub.close()
        for run_id in sub.run_ids:
            key = (sub.org_id, run_id)
            subs = self._subs.get(key)
            if subs is None:
                continue
            with contextlib.suppress(ValueError):
                subs.remove(sub)
            if not subs:
                self._forget(key)
        if not self._subs:
            await self._stop()

    async def aclose(self) -> None:
        """End every wait with an error and stop (the client is closing).

        Bounded when Redis stalls: it waits at most a second (or a lease, if shorter) to give
        the lease back; a lease it could not give back lapses by itself.
        """
        self._closed = True
        error = ClientClosedError("the client was closed while waiting for agent runs")
        for subs in list(self._subs.values()):
            for sub in subs:
                sub.deliver(RunEvent(-1, error=error, fatal=True))
        self._subs.clear()
        await self._stop()
        # Bounded: a lease not given back through a stalled Redis lapses by itself; what
        # is left ends on its own (within the Redis socket timeout).
        if self._goodbyes:
            await asyncio.wait(self._goodbyes, timeout=min(self._settings.lease, CLOSE_WAIT))
            for goodbye in self._goodbyes:
                goodbye.cancel()

    # --- delivering -----------------------------------------------------------------------
    def _deliver(self, key: tuple[int, int], event: RunEvent) -> None:
        subs = self._subs.get(key)
        if not subs:
            return
        finished = event.error is not None or (event.run is not None and event.run.is_terminal)
        for sub in list(subs):
            sub.deliver(event)
        if finished:
            self._forget(key)

    def _forget(self, key: tuple[int, int]) -> None:
        self._subs.pop(key, None)
        self._seen.pop(key, None)
        self._since.pop(key, None)
        self._new.discard(key)
        # A leader's relay polls for the fleet: it stays until the run leaves the watch set
        # (_follow_watch_set) or the task winds down, both of which release it. Dropping it
        # here without a release left it in the engine, polling for good.
        if self._local:
            relay = self._relays.pop(key, None)
            if relay is not None:
                self._spawn(self._engine.release(relay))

    def _received(
        self, key: tuple[int, int], stored: AgentRun | bool | None, *, fresh: bool = True
    ) -> None:
        """A status read from Redis (stream or ``last:``) for a run this process waits on.

        Not ``fresh``: read from ``last:`` when registering (or re-reading) the run, so it
        may be of before a ``resume_run`` (in any process, or outside the SDK); a final
        status from there is checked with one read of the run before a wait ends on it.
        """
        if stored is None or key not in self._subs:
            return
        if stored is True or (not fresh and isinstance(stored, AgentRun) and stored.is_terminal):
            self._spawn(self._read_myself(key))
        elif isinstance(stored, AgentRun):
            self._deliver_run(key, stored)

    # --- reading what is in Redis (another program may have written anything there) -----
    def _key(self, member: bytes | str) -> tuple[int, int] | None:
        try:
            return _parse_member(member)
        except (ValueError, TypeError) as exc:  # bad UTF-8 is a ValueError too
            self._skipped("run name", member, exc)
            return None

    def _decode(self, raw: bytes | str | None, run_id: int) -> AgentRun | bool | None:
        try:
            return _decode_run(raw, run_id)
        except Exception as exc:  # any data at all: the waiter reads the run itself
            self._skipped("run status", raw, exc)
            return True

    def _skipped(self, what: str, data: object, exc: BaseException) -> None:
        """Undecodable data is skipped, never taken for a Redis failure; said once."""
        level = logging.DEBUG if self._warned_data else logging.WARNING
        self._warned_data = True
        log.log(
            level,
            "fleet run watching: skipped an unreadable %s in Redis (%s: %.60r); does another "
            "program write to the fleet's keys?",
            what,
            type(exc).__name__,
            data,
        )

    def _deliver_run(self, key: tuple[int, int], run: AgentRun) -> None:
        if key not in self._subs:
            return  # the leader polled it for another process: nothing to remember here
        seen = self._seen.get(key)
        if seen is not None and _raw(seen) == _raw(run) and not run.is_terminal:
            return  # the same status again (a re-read of last:, the leader's own update)
        self._seen[key] = run
        self._deliver(key, RunEvent(key[1], run=run))

    async def _read_myself(self, key: tuple[int, int]) -> None:
        """The fleet's poll of this run failed: read it here, for the client's own error."""
        try:
            run = await self._source.get_run(*key)
        except CodegenError as exc:
            self._deliver(key, RunEvent(key[1], error=exc))
            return
        self._deliver_run(key, run)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._reads.add(task)
        task.add_done_callback(self._reads.discard)

    # --- the engine's relays (leader: to Redis; local: to the waits) ---------------------
    def _relay(self, key: tuple[int, int]) -> None:
        if key in self._relays:
            return
        self._relays[key] = self._engine.subscribe(
            key[0], (key[1],), sink=lambda event: self._relayed(key, event)
        )

    def _relayed(self, key: tuple[int, int], event: RunEvent) -> None:
        if event.fatal and self._local:
            self._deliver(key, event)
            return
        final = event.error is not None or (event.run is not None and event.run.is_terminal)
        if final:
            self._relays.pop(key, None)  # the engine ends this subscription itself
        if self._local:
            if event.run is not None:
                self._deliver_run(key, event.run)  # _seen knows it: no repeat on rejoining
            else:
                self._deliver(key, event)
            return
        if not self._leading:
            return  # the lease was lost: the relays are being dropped, the new leader polls
        payload = "!" if event.run is None else json.dumps(unstructure(event.run))
        self._outbox.append((key, payload, final))
        self._flush_soon()
        # This process's own waits need no round trip through Redis.
        if event.run is not None:
            self._deliver_run(key, event.run)
        elif key in self._subs:
            self._deliver(key, event)

    def _flush_soon(self) -> None:
        """Publish the outbox now, beside the loop (which may sit in a blocking read)."""
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        redis = self._backend.state().client
        with contextlib.suppress(*self._backend.errors):  # the loop sees it and falls back
            while self._outbox and self._leading:
                await self._publish(redis)

    async def _drop_relays(self) -> None:
        relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            await self._engine.release(relay)

    # --- the background task ------------------------------------------------------------
    # One task serves the waits while there are any. It is wound down (synchronously, see
    # _wind_down) in the very step in which it finds none left, or in which _stop cancels
    # it, so a wait that subscribes later always finds no task and starts a new one: there
    # is no moment when a subscription exists and no task will serve it. What needs Redis
    # after that (publishing the last updates, giving the lease back, closing the
    # connections) runs in a background "goodbye" task, bounded, so a wait that ends (its
    # timeout, say) never waits on Redis.
    def _ensure_running(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._main(), name="codegen-async fleet watcher"
            )

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            # Not awaited: a task inside a stalled Redis call can take the socket timeout
            # to notice. It is wound down here, at once, and ends on its own.
            task.cancel()
            self._wind_down()
            self._goodbyes.add(task)
            task.add_done_callback(self._goodbyes.discard)
        if self._task is None and not self._subs:  # no wait started meanwhile
            for read in list(self._reads):
                read.cancel()
            if self._reads:
                await asyncio.gather(*self._reads, return_exceptions=True)

    async def _main(self) -> None:
        self._backend.attach(self)
        try:
            while self._subs and self._serving():
                try:
                    await self._shared()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis failed (or a bug): the waits must still end
                    if "WRONGTYPE" in str(exc):  # fixed for the next try, a lease from now
                        await self._repair_key_types()
                    if not self._local:
                        if not isinstance(exc, self._backend.errors):
                            log.exception("fleet run watching failed")
                        self._fall_back(exc)
                    # Polls its own runs; tries Redis again every lease period (or at
                    # the next wait), and rejoins the fleet when it answers.
                    await self._wait_locally(self._settings.lease)
        finally:
            if self._serving():  # else _stop wound it down already
                self._wind_down()

    def _serving(self) -> bool:
        """Whether the running task is the one serving (a task _stop cancelled may take a
        while to notice, inside a Redis call; it must not carry on beside a new one)."""
        return asyncio.current_task() is self._task

    def _wind_down(self) -> None:
        """No wait left (or cancelled): stop at once; Redis is told in the background."""
        # Asking for the lease when stopped: Redis may have given it (the answer was not
        # read); the give-back drops it only if this term holds it.
        leading = self._leading or self._asking
        self._leading, self._lost = False, False
        self._stop_heartbeat()
        outbox, self._outbox = self._outbox, []
        relays, self._relays = list(self._relays.values()), {}
        self._local = False
        flushing, self._flushing = self._flushing, None  # ends after its publish (not leading)
        goodbye = asyncio.get_running_loop().create_task(
            self._goodbye(leading, self._term, outbox, relays, flushing),
            name="codegen-async fleet watcher goodbye",
        )
        self._goodbyes.add(goodbye)
        goodbye.add_done_callback(self._goodbyes.discard)

    async def _goodbye(
        self,
        leading: bool,
        term: int,
        outbox: list[tuple[tuple[int, int], str, bool]],
        relays: list[Subscription],
        flushing: asyncio.Task[None] | None,
    ) -> None:
        try:
            for relay in relays:
                await self._engine.release(relay)
            if leading:
                # Bounded: nobody waits on this, but a stalled Redis must not keep it.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._resign(term, outbox, flushing), self._settings.lease
                    )
        finally:
            if self._task is None or self._task.done():  # else the new task uses the client
                await self._backend.detach(self)

    def _fall_back(self, exc: BaseException) -> None:
        if not self._warned:
            # Only a Redis error says Redis is unreachable (a bug was logged with its traceback).
            what = "Redis is unreachable" if isinstance(exc, self._backend.errors) else "it failed"
            log.warning(
                "fleet run watching: %s (%s); this process polls its own runs, and tries "
                "Redis again every %.3g s",
                what,
                type(exc).__name__,
                self._settings.lease,
            )
            self._warned = True
        self._local, self._leading, self._lost = True, False, False
        self._stop_heartbeat()
        self._outbox.clear()
        for relay in list(self._relays.values()):
            self._spawn(self._engine.release(relay))
        self._relays.clear()
        for key in list(self._subs):
            self._relay(key)

    async def _wait_locally(self, seconds: float) -> None:
        """Serve the waits with the own poller for ``seconds`` (or until a wait starts)."""
        assert self._wake is not None
        self._wake.clear()
        for key in list(self._subs):
            self._relay(key)
        if self._subs:
            await wait_event(self._wake, seconds)

    def _rejoin(self) -> None:
        """Redis answers again: the waits move back from the own poller to the fleet's.

        Called once this process has registered its runs and read their stored status (and
        the stream from before that), so nothing the leader publishes from now on is missed;
        a status already delivered here is not delivered again (``_seen``).
        """
        log.info("fleet run watching: Redis answers again; this process rejoins the fleet")
        self._local = False
        for relay in list(self._relays.values()):
            self._spawn(self._engine.release(relay))
        self._relays.clear()

    async def _shared(self) -> None:
        redis = self._backend.state().client
        settings = self._settings
        self._stream_id = await self._stream_tail(redis)
        refresh_at = renew_at = 0.0
        while self._subs and self._serving():
            now = time.monotonic()
            if now >= refresh_at:
                await self._sync_clock(redis)
            await self._register(redis, refresh_all=now >= refresh_at)
            if now >= refresh_at:
                refresh_at = now + settings.ttl / 3
            if self._local:
                self._rejoin()
            if now >= renew_at:
                await self._lead(redis)
                renew_at = now + settings.lease / 3
            if self._leading:
                await self._publish(redis)
            await self._read_updates(redis)

    async def _sync_clock(self, redis: Any) -> None:
        """Learn Redis's clock: every process scores and trims ``watch`` by it, so a host
        whose clock is off (minutes, even) neither drops others' runs nor loses its own."""
        sent = time.time()
        seconds, micros = await cancellable(redis.time())
        self._clock_offset = seconds + micros / 1e6 - (sent + time.time()) / 2

    def _redis_ms(self) -> float:
        """Now by Redis's clock (as last learnt), in milliseconds."""
        return (time.time() + self._clock_offset) * 1000

    async def _repair_key_types(self) -> None:
        """Delete ``watch``/``updates`` if another program left a key of another type there.

        Both only ever hold what any process re-registers (runs are re-read from ``last:``),
        and such a key (no expiry) would otherwise keep every process off the fleet for good.
        """
        expected = {self._watch_key: "zset", self._stream_key: "stream"}
        with contextlib.suppress(Exception):  # Redis is failing anyway: the fallback says so
            redis = self._backend.state().client
            for key, kind in expected.items():
                raw: bytes | str = await cancellable(redis.type(key))
                found = raw.decode() if isinstance(raw, bytes) else raw
                if found not in (kind, "none"):
                    log.warning(
                        "fleet run watching: %s held a %s, the wrong type (not written by this "
                        "SDK); deleted it",
                        key,
                        found,
                    )
                    await cancellable(redis.delete(key))

    async def _stream_tail(self, redis: Any) -> str:
        last = await cancellable(redis.xrevrange(self._stream_key, count=1))
        return str(last[0][0].decode()) if last else "0-0"

    async def _register(self, redis: Any, *, refresh_all: bool) -> None:
        """Tell the fleet which runs this process waits on; read their stored status."""
        keys = list(self._subs) if refresh_all else [k for k in self._new if k in self._subs]
        self._new.clear()
        if not keys:
            return
        expires = self._redis_ms() + self._settings.ttl * 1000
        members = {_member(*key): expires for key in keys}
        keep_ms = int(self._settings.ttl * 1000)  # both keys vanish once nobody waits
        lasts = [self._last_prefix + _member(*key) for key in keys]
        pipe = redis.pipeline(transaction=False)
        pipe.zadd(self._watch_key, members)
        pipe.pexpire(self._watch_key, keep_ms)
        pipe.mget(lasts)
        pipe.xadd(self._stream_key, {"w": "1"}, maxlen=STREAM_LENGTH, approximate=True)
        pipe.pexpire(self._stream_key, keep_ms)
        for last in lasts:  # kept while waited on: a run may not change for hours
            pipe.pexpire(last, LAST_TTL_MS)
        _, _, stored, mark, *_ = await cancellable(_execute(pipe))
        since = _entry_id(mark)
        for key, raw in zip(keys, stored, strict=True):
            if key in self._since and self._since[key] is None:
                self._since[key] = since
            self._received(key, self._decode(raw, key[1]), fresh=False)

    async def _lead(self, redis: Any) -> None:
        """Take the lease if it is free, see that it is renewed if it is ours; follow the
        set if leading."""
        lease_ms = int(self._settings.lease * 1000)
        if self._lost:  # the heartbeat found it gone
            self._lost = False
            await self._lease_lost()
        if self._leading:
            if self._heartbeat is None or self._heartbeat.done():  # a Redis error ended it
                renewed = await cancellable(
                    redis.eval(_RENEW_LUA, 1, self._lease_key, self._holder(), lease_ms)
                )
                if renewed:
                    self._start_heartbeat(redis)
                else:
                    self._leading = False
                    await self._lease_lost()
        else:
            self._term += 1
            self._asking = True  # cancelled meanwhile, the lease may be ours: given back
            try:
                taken = await cancellable(
                    redis.eval(
                        _ACQUIRE_LUA,
                        1,
                        self._lease_key,
                        self._holder(),
                        lease_ms,
                        int(MAX_LEASE * 1000),
                    )
                )
            finally:
                self._asking = False
            if taken == 2:
                log.warning(
                    "fleet run watching: the lease key had no expiry, a longer one than any "
                    "lease, or the wrong type (not written by this SDK); replaced it, this "
                    "process polls for the fleet"
                )
            if taken:
                log.debug("fleet run watching: this process polls for the fleet")
                self._leading = True
                self._full_follow_at = 0.0
                self._start_heartbeat(redis)
        if self._leading and time.monotonic() >= self._full_follow_at:
            await self._follow_watch_set(redis)

    async def _lease_lost(self) -> None:
        log.info("fleet run watching: lease lost; another process polls now")
        await self._drop_relays()
        self._outbox.clear()

    # The lease is renewed by a task of its own, every lease / 3: renewing it between the
    # loop's other steps let it lapse whenever these took longer than two thirds of a lease
    # (thousands of runs, a loaded machine), and each lapse moved every run to another
    # process, which polled them all afresh (the fleet's polling nearly stopped).
    def _start_heartbeat(self, redis: Any) -> None:
        self._stop_heartbeat()
        self._heartbeat = asyncio.get_running_loop().create_task(
            self._keep_lease(redis, self._holder()), name="codegen-async fleet lease"
        )

    def _stop_heartbeat(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None and not heartbeat.done():
            heartbeat.cancel()
            self._goodbyes.add(heartbeat)  # aclose waits for it (bounded)
            heartbeat.add_done_callback(self._goodbyes.discard)

    async def _keep_lease(self, redis: Any, holder: str) -> None:
        """Renew the lease every lease / 3 while it is ours; a Redis error ends this (the
        serving loop then renews it itself, or meets the error too and falls back)."""
        lease = self._settings.lease
        me = asyncio.current_task()
        with contextlib.suppress(*self._backend.errors):
            # Also ends once replaced: its cancellation can be lost inside redis-py (whose
            # asyncio.wait_for around a send loses one on 3.10/3.11), and with this process
            # leading again it would otherwise renew a lease of a past term for good.
            while self._leading and self._heartbeat is me:
                await asyncio.sleep(lease / 3)
                renewed = await cancellable(
                    redis.eval(_RENEW_LUA, 1, self._lease_key, holder, int(lease * 1000))
                )
                if not renewed and self._heartbeat is me:
                    self._leading, self._lost = False, True  # stop publishing at once
                    return

    async def _follow_watch_set(self, redis: Any, *, full: bool = True) -> None:
        """The leader's engine watches exactly the runs some process still waits on.

        ``full``: read the whole set, trim what expired and drop the runs nobody waits on
        (every ``ttl / 3``, and on taking the lease). Else only what was registered since the
        last read (a process said so in the stream): re-reading thousands of runs at every
        registration (and every ``lease / 3``) took most of a core on the leader.
        """
        now_ms = self._redis_ms()
        if full:
            self._full_follow_at = time.monotonic() + self._settings.ttl / 3
            pipe = redis.pipeline(transaction=False)
            pipe.zremrangebyscore(self._watch_key, "-inf", now_ms)
            pipe.zrangebyscore(self._watch_key, now_ms, "+inf")
            _, members = await cancellable(_execute(pipe))
        else:
            # Registered after the last read: scored (by Redis's clock, each process's own
            # estimate of it, hence the slack) at least a ttl after it. A process with a
            # shorter ttl (other quotas) is caught by the next full read.
            since = self._followed_ms + self._settings.ttl * 1000 - FOLLOW_SLACK_MS
            members = await cancellable(redis.zrangebyscore(self._watch_key, f"({since}", "+inf"))
        self._followed_ms = now_ms
        wanted: set[tuple[int, int]] = set()
        junk = []
        for member in members:
            key = self._key(member)
            if key is None:
                junk.append(member)
            else:
                wanted.add(key)
        if junk:  # else it is read (and skipped) again on every turn, for good
            await cancellable(redis.zrem(self._watch_key, *junk))
        for key in wanted:
            self._relay(key)
        if not full:
            return
        for key in [k for k in self._relays if k not in wanted]:
            relay = self._relays.pop(key)
            await self._engine.release(relay)

    async def _publish(
        self, redis: Any, outbox: list[tuple[tuple[int, int], str, bool]] | None = None
    ) -> None:
        if outbox is None:
            outbox, self._outbox = self._outbox, []
        if not outbox:
            return
        pipe = redis.pipeline(transaction=False)
        for key, payload, final in outbox:
            member = _member(*key)
            pipe.set(self._last_prefix + member, payload, px=LAST_TTL_MS)
            if final:  # nobody needs it polled again; a late wait reads last:
                pipe.zrem(self._watch_key, member)
            # Only which run changed: the status itself is in last: (read by the
            # processes that wait on the run), not kept once more per change.
            pipe.xadd(self._stream_key, {"k": member}, maxlen=STREAM_LENGTH, approximate=True)
        pipe.pexpire(self._stream_key, int(self._settings.ttl * 1000))
        await cancellable(_execute(pipe))

    async def _read_updates(self, redis: Any) -> None:
        block_ms = min(max(int(self._settings.lease * 250), 1), BLOCK_MS)
        if self._outbox or self._new:
            block_ms = 1  # work is waiting: do not sit in XREAD
        wake = self._wake
        assert wake is not None
        wake.clear()
        reply = await cancellable(
            redis.xread({self._stream_key: self._stream_id}, count=1000, block=block_ms)
        )
        watched = False  # a process registered runs: the leader follows the set at once
        changed: dict[tuple[int, int], None] = {}  # runs of ours with a newer last:
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                self._stream_id = entry_id.decode()
                member = fields.get(b"k")
                key = None if member is None else self._key(member)
                if (
                    key is not None
                    and self._after_registration(key, entry_id)
                    and not (self._leading and key in self._relays)  # delivered it already
                ):
                    changed[key] = None
                watched = watched or b"w" in fields
        if changed:
            # Written before the entry was appended: last: holds this update or a newer one.
            lasts = [self._last_prefix + _member(*key) for key in changed]
            stored = await cancellable(redis.mget(lasts))
            for key, raw in zip(changed, stored, strict=True):
                self._received(key, self._decode(raw, key[1]))
        if watched and self._leading:
            await self._follow_watch_set(redis, full=False)

    def _after_registration(self, key: tuple[int, int], entry_id: bytes) -> bool:
        """Whether a stream entry about a run is newer than this process's wait on it."""
        if key not in self._since:
            return False
        since = self._since[key]
        return since is not None and _entry_id(entry_id) > since

    def _holder(self, term: int | None = None) -> str:
        """The lease's value: this process and its term (a late give-back spares a new one)."""
        return f"{self.peer}:{self._term if term is None else term}"

    async def _resign(
        self,
        term: int,
        outbox: list[tuple[tuple[int, int], str, bool]],
        flushing: asyncio.Task[None] | None,
    ) -> None:
        """Give the lease back (this process waits on nothing any more)."""
        if flushing is not None:  # a publish under way (its updates are the last ones)
            await asyncio.shield(flushing)
        redis = self._backend.state().client
        if outbox:  # what it saw last still reaches the others
            await self._publish(redis, outbox)
        await cancellable(redis.eval(_DROP_LUA, 1, self._lease_key, self._holder(term)))
