"""Client-side rate limiting that keeps to the API's documented per-route quotas.

Two modes, chosen with ``RateLimits(mode=...)``:

``"window"`` (the default): a sliding-window log. At most N requests are in any window of
T seconds for one route and credential, the first N go at once, and each slot comes back
T seconds (plus a small ``margin``) after the *answer* to the request that used it arrived.
Anchoring on the answer rather than on the moment of sending makes it safe against fixed-
and sliding-window servers whatever the network jitter: the server saw the request before
it answered, so two requests N apart always reach it more than T apart. The price is one
answer's latency (plus the margin) per window: well under 1 % of a 30-60 s window. Pick it
when you want every request as early as the quota allows: a burst of up to N, then the
quota's full rate (all of it over ten windows in ``benchmarks/bench_ratelimit.py``).

``"smooth"``: even pacing, one request every (T + margin) / N, built on ``aiolimiter``
(``AsyncLimiter(1, (T + margin) / N)``), with the window log above as a safety net. Pick it
for an even flow (polling loops, background sync, servers or proxies that dislike bursts);
the first N requests then take (N - 1) * T / N instead of going at once.

Sharing: limiters live in the process-wide :data:`REGISTRY`, one per backend, base URL,
token fingerprint, route, quota and mode, so every client on one credential shares them:
several ``AsyncAgent`` objects, the sync ``Agent`` (whose loop runs in a background thread)
and plain threads. A limiter is thread-safe and not bound to any event loop: its state sits
behind a ``threading.Lock``; each waiter parks on a future of its *own* loop, woken with
``loop.call_soon_threadsafe``. Waiters are served first come, first served; a waiter that
is cancelled leaves the line at once, takes no slot and wakes the next one.

``aiolimiter.AsyncLimiter`` binds itself to the first loop that uses it and is not
thread-safe, so the smooth mode does not share one across loops. Every ``AsyncLimiter`` of
the process lives on one private "pacer" event loop in a daemon thread, started on first use
(and again in a forked child); callers of any loop or thread hop to it for their tick.

A 429 closes the route for every caller until ``Retry-After`` (or one window) has passed:
the transport calls :meth:`Limiter.penalize`, then retries. With
``rate_limit_backend="redis://..."`` the same limiter runs over Redis (see
``_ratelimit_redis``), so processes and hosts on one token share their quotas.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import attrs

from ._endpoints import ENDPOINTS, Endpoint, Quota
from .errors import ConfigurationError

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

    from ._ratelimit_redis import RedisBackend

__all__ = [
    "REGISTRY",
    "Limiter",
    "LimiterRegistry",
    "LimiterStats",
    "RateLimits",
    "SlidingWindowLimiter",
    "SmoothLimiter",
    "credential_fingerprint",
]

log = logging.getLogger("codegen_async.ratelimit")

Mode = Literal["window", "smooth"]
MODES: Final = ("window", "smooth")
DEFAULT_MARGIN: Final = 0.05
DEFAULT_MAX_HOLD: Final = 120.0
Clock = Callable[[], float]
GrantHook = Callable[[float], None]


def _check_mode(_instance: object, _attribute: object, value: object) -> None:
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {value!r}")


def _check_non_negative(_instance: object, attribute: Any, value: float) -> None:
    if not value >= 0:  # also rejects NaN
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


@attrs.frozen
class RateLimits:
    """Per-operation quotas the client keeps to.

    ``RateLimits.documented()`` is the default: the documented quota of every operation.
    Override single entries with :meth:`replace`, or turn limiting off with
    :meth:`disabled`.

    Attributes:
        quotas: Operation name (as in ``ENDPOINTS``) to its quota; ``None`` or a missing
            name means no client-side limit for that operation.
        mode: ``"window"`` (default) lets a burst of N go at once, then keeps at most N in
            any window; ``"smooth"`` spaces requests evenly, one every (T + margin) / N.
        margin: Seconds added to every window, for server clocks that round and for
            network jitter.
        enabled: ``False`` turns client-side limiting off (the server's 429s are still
            waited out and retried).
        max_hold: Seconds after which a slot whose request never reported back is
            reclaimed anyway (a crashed process, in Redis mode).
    """

    quotas: Mapping[str, Quota | None] = attrs.field(factory=dict)
    mode: Mode = attrs.field(default="window", validator=_check_mode)
    margin: float = attrs.field(default=DEFAULT_MARGIN, validator=_check_non_negative)
    enabled: bool = True
    max_hold: float = attrs.field(default=DEFAULT_MAX_HOLD, validator=_check_non_negative)

    @classmethod
    def documented(
        cls, scale: float = 1.0, *, mode: Mode = "window", margin: float | None = None
    ) -> RateLimits:
        """The documented quotas with every window multiplied by ``scale``.

        Args:
            scale: Factor for every window (an emulator run with ``--time-scale 0.01``
                wants ``scale=0.01``).
            mode: ``"window"`` or ``"smooth"``.
            margin: Seconds added to every window; default 50 ms times ``scale`` (at most
                50 ms).

        Raises:
            ValueError: ``scale`` is not positive.
        """
        if not scale > 0 or math.isinf(scale):
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        return cls(
            {name: e.quota.scaled(scale) for name, e in ENDPOINTS.items()},
            mode=mode,
            margin=DEFAULT_MARGIN * min(scale, 1.0) if margin is None else margin,
            max_hold=DEFAULT_MAX_HOLD * max(scale, 1.0),
        )

    @classmethod
    def disabled(cls) -> RateLimits:
        """No client-side limiting at all (the server's 429s are still retried)."""
        return cls({}, enabled=False)

    def replace(self, **quotas: Quota | None) -> RateLimits:
        """A copy with some operations' quotas replaced (``None`` leaves one unlimited).

        Raises:
            ValueError: a name is not an operation of the API.
        """
        unknown = set(quotas) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown operations: {', '.join(sorted(unknown))}")
        for name, quota in quotas.items():
            if quota is not None and (quota.limit < 1 or not quota.window > 0):
                raise ValueError(f"{name}: a quota needs limit >= 1 and window > 0, got {quota}")
        return attrs.evolve(self, quotas={**self.quotas, **quotas})

    def for_endpoint(self, endpoint: Endpoint) -> Quota | None:
        """The quota to keep for one operation, or ``None`` for no limit."""
        if not self.enabled:
            return None
        return self.quotas.get(endpoint.name)


class Limiter(Protocol):
    """What the transport needs from the limiter of one route.

    The transport calls :meth:`acquire` before every attempt, :meth:`release` once the
    attempt is over (answer read, or failed), and :meth:`penalize` after a 429.
    """

    async def acquire(self) -> float:
        """Wait for a slot; return the seconds spent waiting (0.0 when none were)."""
        ...

    def release(self) -> None:
        """The request that used a slot got its answer: the slot's window starts now."""
        ...

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` (the server answered 429)."""
        ...


@attrs.frozen
class LimiterStats:
    """Counters of one limiter, summed over every client that shares it."""

    grants: int
    waits: int
    waited_seconds: float
    penalties: int


# --- a FIFO line of waiters from any thread and event loop ------------------------------


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Waiter:
    """One task waiting in line; it parks on a future of its own loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] | None = None

    def arm(self) -> asyncio.Future[None]:
        """A fresh future to park on (call with the owner's lock held)."""
        self.future = self.loop.create_future()
        return self.future


class _Line:
    """First come, first served line of waiters; call every method with the owner's lock."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: deque[_Waiter] = deque()

    def __len__(self) -> int:
        return len(self._waiters)

    @property
    def head(self) -> _Waiter | None:
        return self._waiters[0] if self._waiters else None

    def join(self, waiter: _Waiter) -> bool:
        """Queue ``waiter``; return whether it is first in line."""
        self.prune()
        self._waiters.append(waiter)
        return len(self._waiters) == 1

    def prune(self) -> None:
        """Drop waiters at the front whose loop was closed under them, and wake the next."""
        if self._waiters and self._waiters[0].loop.is_closed():
            while self._waiters and self._waiters[0].loop.is_closed():
                self._waiters.popleft()
            self.wake_head()

    def pop_head(self) -> None:
        """The head got its slot: let the next one look."""
        self._waiters.popleft()
        self.wake_head()

    def leave(self, waiter: _Waiter) -> None:
        """``waiter`` gives up (cancelled); if it was first, the next one looks at once."""
        if self._waiters and self._waiters[0] is waiter:
            self.pop_head()
            return
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def wake_head(self) -> None:
        """Wake the first waiter on its own loop, dropping waiters whose loop is closed."""
        while self._waiters:
            head = self._waiters[0]
            future = head.future
            if future is None or future.done():
                return  # it is awake already and will look again
            try:
                if _running_loop() is head.loop:
                    future.set_result(None)
                else:
                    head.loop.call_soon_threadsafe(_resolve, future)
                return
            except RuntimeError:  # its loop is closed: that task will never run again
                self._waiters.popleft()


async def _park(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], timeout: float | None
) -> None:
    """Wait until ``future`` is resolved (by a waker) or ``timeout`` seconds passed."""
    timer = None if timeout is None else loop.call_later(max(timeout, 0.0), _resolve, future)
    try:
        await future
    finally:
        if timer is not None:
            timer.cancel()


# --- the sliding-window log -------------------------------------------------------------


class SlidingWindowLimiter:
    """At most ``quota.limit`` requests in any ``quota.window`` seconds, first come first served.

    A slot is *held* from the grant until :meth:`release` (the answer arrived) and then
    *spent* for ``window + margin`` seconds. A slot never released is reclaimed after
    ``max_hold`` seconds. Thread-safe, and usable from several event loops at once.

    Args:
        quota: The limit and window to keep.
        margin: Seconds added to the window.
        name: Operation name, for log lines.
        max_hold: Seconds after which a held slot is reclaimed without :meth:`release`.
        clock: Monotonic clock in seconds; it must agree with the loops' ``time()``
            (both default to ``time.monotonic``).
        on_grant: Called with the clock's time of every grant (metrics, tests); keep it
            cheap, it runs under the limiter's lock.
    """

    def __init__(
        self,
        quota: Quota,
        *,
        margin: float = DEFAULT_MARGIN,
        name: str = "",
        max_hold: float = DEFAULT_MAX_HOLD,
        clock: Clock = time.monotonic,
        on_grant: GrantHook | None = None,
    ) -> None:
        if quota.limit < 1 or not quota.window > 0:
            raise ValueError(f"a quota needs limit >= 1 and window > 0, got {quota}")
        if not margin >= 0 or not max_hold >= 0:
            raise ValueError("margin and max_hold must be non-negative")
        self.quota = quota
        self.margin = margin
        self.max_hold = max_hold
        self.name = name
        self._clock = clock
        self._on_grant = on_grant
        self._lock = threading.Lock()
        self._line = _Line()
        self._held: deque[float] = deque()  # deadlines after which held slots are reclaimed
        self._spent: deque[float] = deque()  # times at which released slots come back
        self._blocked_until = -math.inf
        self._grants = 0
        self._waits = 0
        self._waited = 0.0
        self._penalties = 0

    def __repr__(self) -> str:
        return (
            f"<SlidingWindowLimiter {self.name or '?'} {self.quota} "
            f"held={len(self._held)} spent={len(self._spent)} waiting={len(self._line)}>"
        )

    # --- counters --------------------------------------------------------------------------
    @property
    def waited_seconds(self) -> float:
        """Total seconds callers spent waiting for this limiter."""
        return self._waited

    @property
    def waits(self) -> int:
        """How many acquisitions had to wait."""
        return self._waits

    def stats(self) -> LimiterStats:
        """A snapshot of this limiter's counters."""
        with self._lock:
            return LimiterStats(self._grants, self._waits, self._waited, self._penalties)

    # --- state, all under self._lock -------------------------------------------------------
    def _delay_locked(self, now: float) -> float:
        """0.0 when a slot is free now, else the seconds until one surely is.

        A release can free a slot sooner; it wakes the head of the line.
        """
        spent, held = self._spent, self._held
        while spent and spent[0] <= now:
            spent.popleft()
        while held and held[0] <= now:
            held.popleft()
            log.warning(
                "rate limit %s: a slot was held %.0fs without being released; reclaimed",
                self.name,
                self.max_hold,
            )
        delay = self._blocked_until - now
        if len(spent) + len(held) >= self.quota.limit:
            first_back = min(spent[0] if spent else math.inf, held[0] if held else math.inf)
            delay = max(delay, first_back - now)
        return max(delay, 0.0)

    def _grant_locked(self, now: float) -> None:
        self._held.append(now + self.quota.window + self.margin + self.max_hold)
        self._grants += 1
        if self._on_grant is not None:
            try:
                self._on_grant(now)
            except Exception:  # a metrics hook must not break rate limiting
                log.exception("rate limit %s: on_grant hook failed", self.name)

    # --- the Limiter protocol --------------------------------------------------------------
    async def acquire(self) -> float:
        """Wait for a slot, first come first served; return the seconds waited."""
        loop = asyncio.get_running_loop()
        with self._lock:
            start = self._clock()
            delay: float | None = None
            self._line.prune()
            if not self._line:
                delay = self._delay_locked(start)
                if delay <= 0:
                    self._grant_locked(start)
                    return 0.0  # the common case: no waiter object needed
            waiter = _Waiter(loop)
            is_head = self._line.join(waiter)
            future = waiter.arm()
            ahead = len(self._line) - 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "rate limit %s (%s): waiting%s, %d ahead",
                self.name,
                self.quota,
                "" if delay is None else f" {delay:.3f}s",
                ahead,
            )
        try:
            while True:
                # Those behind the head look up once a window, in case the head's loop died.
                await _park(loop, future, delay if is_head else self.quota.window)
                with self._lock:
                    now = self._clock()
                    self._line.prune()
                    is_head = self._line.head is waiter
                    if is_head:
                        delay = self._delay_locked(now)
                        if delay <= 0:
                            self._grant_locked(now)
                            self._line.pop_head()
                            waited = now - start
                            self._waits += 1
                            self._waited += waited
                            break
                    future = waiter.arm()
        except BaseException:
            with self._lock:
                self._line.leave(waiter)
            raise
        log.debug("rate limit %s (%s): waited %.3fs", self.name, self.quota, waited)
        return waited

    def release(self) -> None:
        """The oldest held slot's request is over: it comes back ``window + margin`` from now."""
        with self._lock:
            if not self._held:
                return  # reclaimed already, or a release without an acquire
            self._held.popleft()
            self._spent.append(self._clock() + self.quota.window + self.margin)
            self._line.wake_head()

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` from now (the server answered 429)."""
        with self._lock:
            until = self._clock() + max(seconds, 0.0)
            self._penalties += 1
            if until > self._blocked_until:
                self._blocked_until = until
                log.debug("rate limit %s: closed for %.3fs after a 429", self.name, seconds)


# --- smooth pacing on aiolimiter ----------------------------------------------------------


class _Pacer:
    """A private event loop in a daemon thread that owns the process's ``AsyncLimiter``\\ s."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, name="codegen-async-ratelimit-pacer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self.pid == os.getpid() and self._thread.is_alive() and not self.loop.is_closed()

    def stop(self) -> None:
        """Stop the loop and wait for the thread (pending ticks are cancelled)."""
        if self.pid != os.getpid():
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5.0)


_pacer_lock = threading.Lock()
_pacer: _Pacer | None = None


def _get_pacer() -> _Pacer:
    global _pacer
    with _pacer_lock:
        if _pacer is None or not _pacer.alive:
            _pacer = _Pacer()
        return _pacer


def stop_pacer() -> None:
    """Stop the pacer thread (it starts again on the next smooth acquire)."""
    global _pacer
    with _pacer_lock:
        pacer, _pacer = _pacer, None
    if pacer is not None:
        pacer.stop()


atexit.register(stop_pacer)


class _Tick:
    """One caller's request for a tick from the pacer (shared between two threads)."""

    __slots__ = ("cancelled", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[bool] | None = None
        self.cancelled = False


class SmoothLimiter:
    """One request every ``(window + margin) / limit`` seconds, paced by ``aiolimiter``.

    The ``AsyncLimiter(1, (window + margin) / limit)`` lives on the pacer loop (see the
    module docstring), behind an ``asyncio.Lock`` of that loop that keeps callers first come,
    first served and lets a 429 pause the pace for everyone. A sliding-window log of the
    same quota (:class:`SlidingWindowLimiter`) backs it up, so that slow answers or jitter
    can never put more than ``limit`` requests into one window. Thread-safe, and usable from
    several event loops at once. ``on_grant`` is called, on the pacer thread, with the
    ``time.monotonic()`` of every tick.
    """

    def __init__(
        self,
        quota: Quota,
        *,
        margin: float = DEFAULT_MARGIN,
        name: str = "",
        max_hold: float = DEFAULT_MAX_HOLD,
        on_grant: GrantHook | None = None,
    ) -> None:
        self.quota = quota
        self.margin = margin
        self.name = name
        self.interval = (quota.window + margin) / quota.limit
        self._clock = time.monotonic  # the pacer loop's clock too
        self._on_grant = on_grant
        self._guard = SlidingWindowLimiter(quota, margin=margin, name=name, max_hold=max_hold)
        self._lock = threading.Lock()
        self._state: tuple[_Pacer, AsyncLimiter, asyncio.Lock] | None = None
        self._blocked_until = -math.inf  # on time.monotonic, the pacer loop's clock
        self._waits = 0
        self._waited = 0.0
        self._penalties = 0

    def __repr__(self) -> str:
        return f"<SmoothLimiter {self.name or '?'} {self.quota} every {self.interval:.3f}s>"

    @property
    def waited_seconds(self) -> float:
        """Total seconds callers spent waiting for this limiter."""
        return self._waited

    @property
    def waits(self) -> int:
        """How many acquisitions had to wait."""
        return self._waits

    def stats(self) -> LimiterStats:
        """A snapshot of this limiter's counters."""
        grants = self._guard.stats().grants
        with self._lock:
            return LimiterStats(grants, self._waits, self._waited, self._penalties)

    def _pacer_state(self) -> tuple[_Pacer, AsyncLimiter, asyncio.Lock]:
        pacer = _get_pacer()
        with self._lock:
            if self._state is None or self._state[0] is not pacer:
                # A new pacer (first use, or a forked child): new loop, new AsyncLimiter.
                # Imported here: only the smooth mode needs aiolimiter (and its import of
                # importlib.metadata), so ``import codegen_async`` does not pay for it.
                from aiolimiter import AsyncLimiter

                self._state = (pacer, AsyncLimiter(1, self.interval), asyncio.Lock())
            return self._state

    async def _tick(self, limiter: AsyncLimiter, line: asyncio.Lock) -> bool:
        """On the pacer loop: wait for this caller's turn and tick; return whether it waited."""
        loop = asyncio.get_running_loop()
        async with line:
            waited = False
            while (pause := self._blocked_until - loop.time()) > 0:
                waited = True
                await asyncio.sleep(pause)
            if not limiter.has_capacity():
                waited = True
            await limiter.acquire()
            if self._on_grant is not None:
                try:
                    self._on_grant(loop.time())
                except Exception:  # a metrics hook must not break rate limiting
                    log.exception("rate limit %s: on_grant hook failed", self.name)
            return waited

    def _give_back(self, limiter: AsyncLimiter) -> None:
        """On the pacer loop: a tick went to a caller that had been cancelled; undo it.

        ``aiolimiter`` has no public way to return capacity; its bucket level and waker are
        plain attributes in every 1.x release. Without them the tick is simply lost (the
        pace skips one beat), which is safe.
        """
        level = getattr(limiter, "_level", None)
        if isinstance(level, (int, float)):
            limiter._level = max(0.0, level - 1.0)
            wake = getattr(limiter, "_wake_next", None)
            if callable(wake):
                wake()

    async def acquire(self) -> float:
        """Wait for this caller's tick, first come first served; return the seconds waited."""
        loop = asyncio.get_running_loop()
        start = self._clock()
        pacer, limiter, line = self._pacer_state()
        outcome: asyncio.Future[bool] = loop.create_future()
        tick = _Tick()

        def finish(task: asyncio.Task[bool]) -> None:  # on the caller's loop
            ok = not task.cancelled() and task.exception() is None
            if outcome.done():  # the caller was cancelled: nobody uses this tick
                if ok:
                    with contextlib.suppress(RuntimeError):
                        pacer.loop.call_soon_threadsafe(self._give_back, limiter)
            elif ok:
                outcome.set_result(task.result())
            elif task.cancelled():
                outcome.set_exception(RuntimeError("the rate-limit pacer thread stopped"))
            else:
                outcome.set_exception(task.exception() or RuntimeError("pacer failed"))

        def deliver(task: asyncio.Task[bool]) -> None:  # on the pacer loop
            try:
                loop.call_soon_threadsafe(finish, task)
            except RuntimeError:  # the caller's loop is closed
                if not task.cancelled() and task.exception() is None:
                    self._give_back(limiter)

        def start_tick() -> None:  # on the pacer loop
            if tick.cancelled:
                return
            tick.task = pacer.loop.create_task(self._tick(limiter, line))
            tick.task.add_done_callback(deliver)

        def cancel_tick() -> None:  # on the pacer loop, always after start_tick
            tick.cancelled = True
            if tick.task is not None:
                tick.task.cancel()

        pacer.loop.call_soon_threadsafe(start_tick)
        try:
            paced = await outcome
        except BaseException:
            with contextlib.suppress(RuntimeError):
                pacer.loop.call_soon_threadsafe(cancel_tick)
            raise
        try:
            guarded = await self._guard.acquire()
        except BaseException:
            with contextlib.suppress(RuntimeError):  # the tick is unused: give it back
                pacer.loop.call_soon_threadsafe(self._give_back, limiter)
            raise
        waited = self._clock() - start if paced or guarded else 0.0
        if waited:
            with self._lock:
                self._waits += 1
                self._waited += waited
            log.debug("rate limit %s (%s, smooth): waited %.3fs", self.name, self.quota, waited)
        return waited

    def release(self) -> None:
        """The request that used the last tick is over."""
        self._guard.release()

    def penalize(self, seconds: float) -> None:
        """Admit nobody for ``seconds`` from now (the server answered 429)."""
        with self._lock:
            until = time.monotonic() + max(seconds, 0.0)
            self._penalties += 1
            if until > self._blocked_until:
                self._blocked_until = until
                log.debug("rate limit %s: closed for %.3fs after a 429", self.name, seconds)


# --- the process-wide registry ------------------------------------------------------------


def credential_fingerprint(base_url: str, token: str) -> str:
    """A one-way name for a (base URL, token) pair: SHA-256, 32 hex digits."""
    return hashlib.sha256(f"{base_url}\n{token}".encode()).hexdigest()[:32]


def parse_backend(backend: str | None) -> str | None:
    """``None`` for in-process memory, else the Redis URL.

    Raises:
        ConfigurationError: not ``memory`` nor a ``redis://``, ``rediss://`` or
            ``unix://`` URL.
    """
    if backend is None or backend.strip() in ("", "memory", "memory://"):
        return None
    url = backend.strip()
    if url.split("://", 1)[0].lower() in ("redis", "rediss", "unix"):
        return url
    scheme = url.split("://", 1)[0] if "://" in url else url[:20]
    raise ConfigurationError(
        f"unsupported rate_limit_backend {scheme!r}: use 'memory' or 'redis://HOST:PORT/DB'"
    )


_Key = tuple[str, str, str, str, Quota, str]


class LimiterRegistry:
    """Process-wide limiters, one per (backend, base URL, token, route, quota, mode)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limiters: dict[_Key, Limiter] = {}
        self._backends: dict[str, RedisBackend] = {}

    def get(
        self,
        base_url: str,
        token: str,
        endpoint: Endpoint,
        limits: RateLimits,
        *,
        backend: str | None = None,
    ) -> Limiter | None:
        """The shared limiter of one operation for one credential, or ``None`` (no limit).

        Raises:
            ConfigurationError: ``backend`` is not understood, or needs the ``redis``
                extra that is not installed.
        """
        quota = limits.for_endpoint(endpoint)
        if quota is None:
            return None
        redis_url = parse_backend(backend)
        fingerprint = credential_fingerprint(base_url, token)
        key = (redis_url or "memory", base_url, fingerprint, endpoint.route, quota, limits.mode)
        with self._lock:
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = self._build(redis_url, fingerprint, endpoint, quota, limits)
                self._limiters[key] = limiter
            return limiter

    def _build(
        self,
        redis_url: str | None,
        fingerprint: str,
        endpoint: Endpoint,
        quota: Quota,
        limits: RateLimits,
    ) -> Limiter:
        margin, max_hold, name = limits.margin, limits.max_hold, endpoint.name
        if redis_url is not None:
            from ._ratelimit_redis import RedisLimiter

            return RedisLimiter(
                self._backend_locked(redis_url),
                fingerprint,
                name,
                quota,
                smooth=limits.mode == "smooth",
                margin=margin,
                max_hold=max_hold,
            )
        if limits.mode == "smooth":
            return SmoothLimiter(quota, margin=margin, name=name, max_hold=max_hold)
        return SlidingWindowLimiter(quota, margin=margin, name=name, max_hold=max_hold)

    def _backend_locked(self, url: str) -> RedisBackend:
        backend = self._backends.get(url)
        if backend is None:
            from ._ratelimit_redis import RedisBackend

            backend = self._backends[url] = RedisBackend(url)
        return backend

    def attach(self, backend: str | None) -> bool:
        """A client starts using ``backend`` in the running loop; ``True`` if it must
        :meth:`detach` when it closes (only Redis backends keep per-loop connections)."""
        url = parse_backend(backend)
        if url is None:
            return False
        with self._lock:
            redis_backend = self._backend_locked(url)
        redis_backend.attach()
        return True

    async def detach(self, backend: str | None) -> None:
        """A client of the running loop stops using ``backend``; the last one closes the
        loop's Redis connections."""
        url = parse_backend(backend)
        if url is None:
            return
        with self._lock:
            redis_backend = self._backends.get(url)
        if redis_backend is not None:
            await redis_backend.detach()

    async def aclose(self) -> None:
        """Close every Redis connection the registry holds and forget every limiter."""
        with self._lock:
            backends = list(self._backends.values())
            self._backends.clear()
            self._limiters.clear()
        for redis_backend in backends:
            await redis_backend.aclose()

    def clear(self) -> None:
        """Forget every limiter (tests use this between cases); Redis connections stay
        open until :meth:`detach` or :meth:`aclose`."""
        with self._lock:
            self._limiters.clear()

    def _after_fork(self) -> None:
        # A lock held by another thread at fork time would stay locked in the child, and
        # the parent's connections and waiters mean nothing there: start afresh.
        self._lock = threading.Lock()
        self._limiters = {}
        self._backends = {}


REGISTRY: Final = LimiterRegistry()
"""The limiters of this process, shared by every client."""


def _after_fork_in_child() -> None:
    # Locks held by other threads at fork time would stay locked in the child; the pacer
    # thread does not exist there (it starts again on first use).
    global _pacer_lock, _pacer
    _pacer_lock = threading.Lock()
    _pacer = None
    REGISTRY._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
