"""Sending one operation: session, rate limit, retries, and error translation.

This is the only module that touches aiohttp on the client side. :meth:`Transport.request`
reads as its loop does: acquire a slot of the route's quota -> send one attempt -> release
the slot -> decide. Foreign exceptions are translated into the SDK's own at one place
(:func:`_send_once`, which returns a failed attempt as an :class:`_Answer` carrying its
error rather than raising it), and the decision whether to try again is the one pure
function ``_retry.may_retry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import warnings
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
from multidict import CIMultiDict

from ._config import ClientConfig, SecretStr, Timeout
from ._converter import ResponseShapeError, structure
from ._endpoints import Endpoint
from ._logging import log
from ._masking import mask_bytes, mask_json, mask_text
from ._notgiven import NotGiven
from ._options import CallOptions
from ._ratelimit import REGISTRY, Limiter, QuotaWaitExceeded, RateLimits
from ._retry import NO_ANSWER, NOT_SENT, backoff_delay, may_retry, parse_retry_after
from ._validation import QueryPairs, merge_headers
from ._version import __version__
from ._waiting import wait_event
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    RateLimitError,
    UnprocessableEntityError,
    ValidationErrorDetail,
    error_class_for,
)

__all__ = ["Transport", "TransportStats"]


USER_AGENT: Final = f"codegen-async/{__version__} (aiohttp/{aiohttp.__version__})"
_JSON_HEADERS: Final = {"Content-Type": "application/json"}


@attrs.define
class TransportStats:
    """Counters of one client: what it sent, retried, and how long the limiter held it.

    Attributes:
        requests: HTTP attempts sent (retries included).
        retries: Attempts that were retries.
        rate_limited: 429 answers received.
        rate_limit_wait_seconds: Seconds calls were held for quota, summed over calls:
            15 calls held together for 6 s count 90 s.
        rate_limit_waits: Calls that had to wait for quota.
        rate_limit_wall_seconds: Wall-clock seconds during which at least one call was
            held for quota (the 15 calls above count 6 s).
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    rate_limit_waits: int = 0
    rate_limit_wall_seconds: float = 0.0


@attrs.define  # not frozen: a frozen attrs __init__ costs twice as much, on every call
class _Answer:
    """What one attempt brought back: an HTTP answer, or (``error`` set) none.

    Without an answer, ``status`` is ``_retry.NOT_SENT`` or ``_retry.NO_ANSWER``.
    """

    status: int
    # Kept out of repr: tracebacks that show local variables (error trackers) would print
    # a body or header holding the token as the server echoed it, unmasked.
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")
    error: APIConnectionError | None = None


_NO_HEADERS: Final[Mapping[str, str]] = {}


def _client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeout.total, connect=timeout.connect)


class _Shared:
    """What a client and every client made from it by ``with_options`` share.

    The session (made lazily in the first loop that uses it), the limiters, the stats and
    the closed flag: closing any of these clients closes it for all of them.
    """

    def __init__(self, session: aiohttp.ClientSession | None, backend: str | None) -> None:
        self.session = session
        self.owns_session = session is None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.backend = backend
        self.limiters: dict[str, Limiter | None] = {}
        self.backend_attached = False  # holds a share of the backend's per-loop connections
        self.stats = TransportStats()
        self.waits = _WaitClock(self.stats)
        self.wake: asyncio.Event | None = None  # set on close: ends backoff pauses at once
        # The tasks of the calls in flight (cancelled on close) and those cancelled so.
        self.calls: set[asyncio.Task[Any]] = set()
        self.closed_under: set[asyncio.Task[Any]] = set()

    def end_call(self, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` (on its loop) if its call is still in flight: the client closed.

        Wherever the call is: waiting for quota (it leaves the line, taking nothing), or
        reading an answer (aiohttp's ``session.close()`` does not end a body read in
        progress, aio-libs/aiohttp#5582: it read on until its timeout, for good without).
        """
        if task in self.calls:
            self.closed_under.add(task)
            task.cancel()

    def closed_it(self, task: asyncio.Task[Any]) -> bool:
        """Whether closing the client is what cancelled ``task`` (its call then raises
        :class:`ClientClosedError`).

        Not when its owner cancelled it too (``task.cancel()``, ``asyncio.timeout``, a
        ``TaskGroup``) in the same turn: that cancellation was accepted, so it ends the
        call (Python 3.11+; 3.10 cannot tell the two apart).
        """
        if task not in self.closed_under:
            return False
        self.closed_under.discard(task)
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        return uncancel is None or uncancel() == 0

    def __del__(self, _warn: Any = warnings.warn) -> None:
        session = getattr(self, "session", None)
        if session is None or session.closed or not getattr(self, "owns_session", False):
            return
        _warn(
            "codegen_async client was not closed: use 'async with AsyncAgent() as agent' "
            "or 'await agent.aclose()'",
            ResourceWarning,
            stacklevel=2,
        )
        loop = self.loop
        if loop is not None and not loop.is_closed():
            # Close it on its own loop so that no socket is left open.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: loop.create_task(session.close()))


class _WaitClock:
    """Sums the wall-clock time during which at least one call waited for quota.

    Waits are reported as they end (so in order of their end), each as (start, end);
    overlapping ones are merged, so 15 calls held together for 6 s count 6 s here (and
    90 s in ``rate_limit_wait_seconds``, the sum over calls).
    """

    __slots__ = ("_spans", "_stats")
    _KEEP = 256  # merged spans remembered; an older one cannot overlap a new wait in practice

    def __init__(self, stats: TransportStats) -> None:
        self._stats = stats
        self._spans: list[list[float]] = []

    def add(self, waited: float) -> None:
        end = time.monotonic()
        start = end - waited
        spans = self._spans
        while spans and spans[-1][1] >= start:  # overlaps: merge, and count it once
            first, last = spans.pop()
            self._stats.rate_limit_wall_seconds -= last - first
            start = min(start, first)
        spans.append([start, end])
        self._stats.rate_limit_wall_seconds += end - start
        if len(spans) > self._KEEP:
            del spans[: len(spans) - self._KEEP]


class Transport:
    """One aiohttp session with the client's settings; created lazily in the running loop."""

    def __init__(
        self,
        config: ClientConfig,
        rate_limits: RateLimits,
        *,
        backend: str | None = None,
        session: aiohttp.ClientSession | None = None,
        shared: _Shared | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.rate_limits = rate_limits
        self._shared = _Shared(session, backend) if shared is None else shared
        self.stats = self._shared.stats
        self._limiters = self._shared.limiters  # route name -> limiter, for these quotas
        own = {
            # A SecretStr: the headers show up in tracebacks that print local variables.
            "Authorization": SecretStr(f"Bearer {config.token}"),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        # The client's default headers win over the SDK's own (Authorization is refused).
        self._headers = merge_headers(own, config.default_headers)
        self._json_headers = merge_headers({**own, **_JSON_HEADERS}, config.default_headers)
        self._default_timeout = _client_timeout(config.timeout)
        limit = config.max_response_bytes
        self._body_cap = None if limit is None else _BodyCap(limit)
        self._rng = random.Random()

    def derive(
        self,
        config: ClientConfig,
        rate_limits: RateLimits | None = None,
        kind: type[Transport] | None = None,
    ) -> Transport:
        """A transport with other settings sharing this one's session, limiters and stats.

        ``kind`` makes another sort of transport (the raw one); default: this one's.
        """
        limits = self.rate_limits if rate_limits is None else rate_limits
        cls = type(self) if kind is None else kind
        derived = cls(config, limits, backend=self.backend, shared=self._shared)
        if rate_limits is not None and rate_limits is not self.rate_limits:
            # Other quotas (``request(quota=...)``): a limiter cached by route name for
            # the shared ones would not be theirs; the registry finds each its own.
            derived._limiters = {}
        return derived

    def __repr__(self) -> str:
        return f"<Transport {self.config.base_url} closed={self._shared.closed}>"

    # --- lifecycle -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._shared.closed

    def _session_for_loop(self) -> aiohttp.ClientSession:
        shared = self._shared
        if shared.closed:
            raise ClientClosedError("this client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if shared.session is None:
            network = self.config.network
            shared.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ttl_dns_cache=300, **network.connector_kwargs()),
                timeout=self._default_timeout,
                raise_for_status=False,
                auto_decompress=True,
                **network.session_kwargs(),
            )
            shared.loop = loop
        elif shared.loop is not None and shared.loop is not loop:
            raise RuntimeError(
                "this client was first used in another event loop; aiohttp sessions are bound "
                "to one loop, so create one client per loop (or use codegen_sync.Agent)"
            )
        return shared.session

    async def aclose(self) -> None:
        """Close the session and its connections. Safe to call twice.

        Calls in flight end at once with :class:`ClientClosedError` (no retry).
        """
        shared = self._shared
        shared.closed = True
        if shared.wake is not None:
            shared.wake.set()
        for task in list(shared.calls):  # only this client's: others keep their place in line
            task.get_loop().call_soon_threadsafe(shared.end_call, task)
        session, shared.session = shared.session, None
        if session is not None and shared.owns_session and not session.closed:
            await session.close()
        shared.limiters.clear()  # a route nobody holds can be forgotten once idle
        if shared.backend_attached:
            shared.backend_attached = False
            await REGISTRY.detach(shared.backend, shared)

    # --- sending -----------------------------------------------------------------------
    def _limiter(self, endpoint: Endpoint) -> Limiter | None:
        limiters = self._limiters
        try:
            return limiters[endpoint.name]
        except KeyError:
            limiter = REGISTRY.get(
                self.config.token, endpoint, self.rate_limits, backend=self.backend
            )
            if limiter is not None and not self._shared.backend_attached:
                self._shared.backend_attached = REGISTRY.attach(self.backend, self._shared)
            limiters[endpoint.name] = limiter
            return limiter

    async def request(
        self,
        endpoint: Endpoint,
        path: str,
        params: Mapping[str, str] | QueryPairs | None = None,
        body: Any = None,
        options: CallOptions | None = None,
    ) -> Any:
        """Send one operation and return its parsed, typed answer.

        Waits for the route's rate limit before every attempt, retries what
        ``_retry.may_retry`` allows, keeps within the call's deadline, and raises the
        SDK's typed errors. ``options`` (``None`` on the plain path) are the call's own
        settings: timeout, deadline, extra headers, query and body.
        """
        session = self._session_for_loop()
        url = self.config.base_url + path
        if options is None:  # the plain call: the client's settings as they are
            query: Mapping[str, str] | QueryPairs | None = params
            timeout, deadline = self._default_timeout, self.config.deadline
            data = None if body is None else _dumps(body)
            headers: Mapping[str, str] = self._headers if data is None else self._json_headers
        else:
            query, data, headers, timeout, deadline = self._apply(options, params, body)
        until = None if deadline is None else time.monotonic() + deadline
        limiter = self._limiter(endpoint)
        verbose = log.isEnabledFor(logging.INFO)  # CODEGEN_LOG=info|debug, or the app's
        attempt = 0
        shared = self._shared
        task = asyncio.current_task()
        assert task is not None
        shared.calls.add(task)  # aclose() cancels it wherever it is (see _Shared.end_call)
        waiting = False
        try:
            while True:
                if limiter is not None:  # acquire a slot of the route's quota
                    waiting = True
                    waited = await self._acquire(limiter, until, deadline, endpoint, url)
                    waiting = False
                    if waited:
                        self._count_wait(waited)
                        log.info(
                            "%s %s waited %.2fs for the %s quota", endpoint.method, url, waited,
                            endpoint.name,
                        )  # fmt: skip
                try:  # send
                    attempt_timeout = timeout
                    if until is not None:  # (the slot is given back if no time is left)
                        assert deadline is not None
                        attempt_timeout = self._within(
                            until, deadline, timeout, endpoint, url, attempt
                        )
                    self.stats.requests += 1
                    started = time.perf_counter() if verbose else 0.0
                    answer = await _send_once(
                        session,
                        endpoint.method,
                        url,
                        query,
                        data,
                        headers,
                        attempt_timeout,
                        self._body_cap,
                        self.config.network.proxy,
                    )
                finally:  # release: the slot's window starts once the attempt is over, when
                    # the server has surely counted it
                    if limiter is not None:
                        limiter.release()
                if verbose:
                    _log_attempt(endpoint.method, url, answer, started, attempt, self.config.token)
                if answer.error is None and answer.status < 400:
                    return self._parse(endpoint, url, answer)
                # decide: raise now, or pause and try again
                delay = self._next_try(endpoint, url, answer, limiter, attempt, until, deadline)
                attempt += 1
                await self._pause(delay)
                if shared.closed:
                    raise self._closed_error(endpoint, url)
        except asyncio.CancelledError:
            if not shared.closed_it(task):
                raise
            if waiting:
                raise ClientClosedError(
                    f"{endpoint.method} {url}: the client was closed while this call waited "
                    "for quota"
                ) from None
            raise self._closed_error(endpoint, url) from None
        finally:
            shared.calls.discard(task)
            shared.closed_under.discard(task)

    def _apply(
        self, options: CallOptions, params: Mapping[str, str] | QueryPairs | None, body: Any
    ) -> tuple[
        Mapping[str, str] | QueryPairs | None,
        bytes | None,
        Mapping[str, str],
        aiohttp.ClientTimeout,
        float | None,
    ]:
        """The request parts of a call given options: theirs win over the client's."""
        query: Mapping[str, str] | QueryPairs | None = params
        if options.query:
            query = _merge_query(params, options.query)
        if options.body is not None:
            body = {**(body or {}), **options.body}
        data = None if body is None else _dumps(body)
        headers: Mapping[str, str] = self._headers if data is None else self._json_headers
        if options.headers:
            headers = merge_headers(headers, options.headers)
        timeout = self._default_timeout
        if not isinstance(options.timeout, NotGiven):
            timeout = _client_timeout(options.timeout)
        deadline = options.deadline
        if isinstance(deadline, NotGiven):
            deadline = self.config.deadline
        return query, data, headers, timeout, deadline

    def _count_wait(self, waited: float) -> None:
        self.stats.rate_limit_wait_seconds += waited
        self.stats.rate_limit_waits += 1
        self._shared.waits.add(waited)

    def _next_try(
        self,
        endpoint: Endpoint,
        url: str,
        answer: _Answer,
        limiter: Limiter | None,
        attempt: int,
        until: float | None,
        deadline: float | None,
    ) -> float:
        """After a failed attempt: the pause before the next one, or the error raised now.

        Raised now: the client was closed; the rule (``may_retry``) says no; or the pause
        (or the server's ``Retry-After``) cannot end before the call's deadline.
        """
        if self._shared.closed:
            raise self._closed_error(endpoint, url)
        error, retry_after = self._failure(endpoint, url, answer, limiter)
        if until is not None and answer.status == NO_ANSWER and time.monotonic() >= until:
            assert deadline is not None  # the attempt ran out of the call's time
            raise _deadline_error(deadline, endpoint, url, attempt + 1)
        if not may_retry(
            answer.status,
            idempotent=endpoint.idempotent,
            attempt=attempt,
            max_retries=self.config.max_retries,
        ):
            raise _after_attempts(error, attempt + 1)
        if answer.status == 429 and limiter is not None:
            delay = self._rng.uniform(0, 0.05)  # the limiter itself waits out the pause
            wait = delay + (retry_after or 0.0)
        else:
            delay = wait = backoff_delay(attempt, retry_after=retry_after, rng=self._rng)
        if until is not None and time.monotonic() + wait >= until:
            raise _after_attempts(error, attempt + 1)  # the pause cannot fit: the error now
        self.stats.retries += 1
        log.info(
            "%s %s failed (%s); retry %d of %d in %.2fs",
            endpoint.method,
            url,
            error.__class__.__name__,
            attempt + 1,
            self.config.max_retries,
            delay,
        )
        return delay

    def _within(
        self,
        until: float,
        deadline: float,
        timeout: aiohttp.ClientTimeout,
        endpoint: Endpoint,
        url: str,
        attempt: int,
    ) -> aiohttp.ClientTimeout:
        """The attempt's timeout, clipped to what is left of the call's deadline."""
        left = until - time.monotonic()
        if left <= 0:
            raise _deadline_error(deadline, endpoint, url, attempt)
        total = left if timeout.total is None else min(timeout.total, left)
        connect = None if timeout.connect is None else min(timeout.connect, total)
        return aiohttp.ClientTimeout(total=total, connect=connect)

    async def _acquire(
        self,
        limiter: Limiter,
        until: float | None,
        deadline: float | None,
        endpoint: Endpoint,
        url: str,
    ) -> float:
        """A slot of the route's quota (:meth:`aclose` ends the wait: see :meth:`request`)."""
        if until is None or deadline is None:
            return await limiter.acquire()
        return await self._acquire_before(limiter, until, deadline, endpoint, url)

    async def _acquire_before(
        self, limiter: Limiter, until: float, deadline: float, endpoint: Endpoint, url: str
    ) -> float:
        """A slot of the route's quota before the call's deadline, else a RateLimitError.

        The limiter raises at once when the wait it knows of cannot fit (it never sleeps
        a wait that cannot end in time); the error says when a slot is expected.
        """
        try:
            return await limiter.acquire(until)
        except QuotaWaitExceeded as exc:
            if exc.backend_silent:  # Redis stalled: no request was sent, no quota is known
                raise _deadline_error(
                    deadline,
                    endpoint,
                    url,
                    0,
                    "the rate-limit backend (Redis) did not answer in time",
                ) from None
            raise RateLimitError(
                "the route's quota is used up and no slot frees before the call's deadline "
                f"(the next is expected in {exc.retry_after:.1f}s)",
                retry_after=exc.retry_after,
                status_code=429,
                method=endpoint.method,
                url=url,
            ) from None

    async def _pause(self, delay: float) -> None:
        """Sleep between attempts; closing the client ends the pause at once."""
        shared = self._shared
        if shared.wake is None:
            shared.wake = asyncio.Event()
        await wait_event(shared.wake, delay)

    def _closed_error(self, endpoint: Endpoint, url: str) -> ClientClosedError:
        return ClientClosedError(
            f"{endpoint.method} {url}: the client was closed while this call was in flight"
        )

    def _parse(self, endpoint: Endpoint, url: str, answer: _Answer) -> Any:
        try:
            payload = _loads(answer.body) if answer.body else None
        except ValueError:
            snippet = mask_text(
                mask_bytes(answer.body[:1000], self.config.token)[:120].decode("utf-8", "replace"),
                self.config.token,
            )  # masked whole, then once more as cut (a token split by the cut)
            raise APIResponseValidationError(
                f"{endpoint.method} {url} answered {answer.status} with a body that is not "
                f"JSON (content-type {answer.headers.get('Content-Type', 'unknown')}): "
                f"{snippet!r}",
                method=endpoint.method,
                url=url,
                status_code=answer.status,
                body=snippet,
            ) from None
        try:
            return structure(payload, endpoint.response)
        except ResponseShapeError as exc:
            # A server may echo the token, in any form: the error, and the locals a
            # traceback shows (``exc`` is gone, ``payload`` replaced), hold it masked.
            token = self.config.token
            problem = mask_text(str(exc), token)
            where = None if exc.path is None else mask_text(exc.path, token)
        payload = mask_json(payload, token)
        raise APIResponseValidationError(
            f"{endpoint.method} {url}: the answer does not match the API's "
            f"{getattr(endpoint.response, '__name__', str(endpoint.response))}: {problem}",
            method=endpoint.method,
            url=url,
            status_code=answer.status,
            path=where,
            body=payload,
        ) from None

    def _failure(
        self, endpoint: Endpoint, url: str, answer: _Answer, limiter: Limiter | None
    ) -> tuple[Exception, float | None]:
        """The typed error of a failed attempt and the server's hint of when to come back.

        A 429 also pauses the route's limiter for everyone, for the hinted time (else a
        whole quota window).
        """
        if answer.error is not None:
            return answer.error, None
        error = build_status_error(
            endpoint.method,
            url,
            answer.status,
            answer.headers,
            answer.body,
            secret=self.config.token,
        )
        if isinstance(error, RateLimitError):
            self.stats.rate_limited += 1
            retry_after = error.retry_after  # already read from the headers
            if limiter is not None:
                quota = self.rate_limits.for_endpoint(endpoint)
                pause = retry_after
                if pause is None and quota is not None:
                    pause = quota.window
                limiter.penalize(pause or 0.0)
            return error, retry_after
        return error, parse_retry_after(answer.headers)


def _merge_query(params: Mapping[str, str] | QueryPairs | None, extra: QueryPairs) -> QueryPairs:
    """The SDK's query parameters with the extra ones winning (a list repeats a name)."""
    names = {key for key, _ in extra}
    pairs = params.items() if isinstance(params, Mapping) else (params or ())
    kept = [(key, value) for key, value in pairs if key not in names]
    return kept + list(extra)


def _deadline_error(
    deadline: float, endpoint: Endpoint, url: str, attempts: int, why: str = ""
) -> APITimeoutError:
    tried = {0: "before any attempt", 1: "1 attempt"}.get(attempts, f"{attempts} attempts")
    if why:
        tried = f"{tried}: {why}"
    return APITimeoutError(
        f"{endpoint.method} {url}: the call's deadline of {deadline:g}s passed ({tried})",
        method=endpoint.method,
        url=url,
    )


def _after_attempts(error: Exception, attempts: int) -> Exception:
    """The last attempt's error, saying how many attempts were made when more than one."""
    if attempts > 1 and type(error) in (APIConnectionError, APITimeoutError):
        assert isinstance(error, APIConnectionError)
        return type(error)(
            f"{error.message} ({attempts} attempts)", method=error.method, url=error.url
        )
    return error


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _loads(body: bytes) -> Any:
    """``json.loads(body)``, a little faster for the usual UTF-8 body.

    Decoding first skips ``json``'s encoding detection; anything that does not parse that
    way (a BOM, UTF-16, not JSON at all) goes through ``json.loads(body)`` itself, so the
    result or the error is the same as before. A body nested deeper than the decoder can
    recurse raises ``ValueError`` too, never a bare ``RecursionError``.
    """
    try:
        try:
            return json.loads(body.decode())
        except ValueError:
            return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply to decode") from None


async def _send_once(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    params: Mapping[str, str] | QueryPairs | None,
    data: bytes | None,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    cap: _BodyCap | None,
    proxy: str | None = None,
) -> _Answer:
    """One HTTP exchange; aiohttp's exceptions become the SDK's, returned in the answer."""
    try:
        async with session.request(
            method, url, params=params, data=data, headers=headers, timeout=timeout, proxy=proxy
        ) as resp:
            if cap is None or cap.surely_fits(resp.headers):
                body = await resp.read()  # the usual answer: known to be small, not inflated
            else:
                body = await _read_capped(resp, cap.limit, method, url)
            answer = _Answer(resp.status, resp.headers, body)
    except aiohttp.ClientConnectorError as exc:
        # No connection was made, so the server cannot have acted: safe to retry anything.
        error = APIConnectionError(
            f"cannot connect to {exc.host}:{exc.port} ({exc.os_error or exc})",
            method=method,
            url=url,
        )
        return _Answer(NOT_SENT, _NO_HEADERS, b"", error)
    except asyncio.TimeoutError:
        error = APITimeoutError(
            f"{method} {url} got no answer within {timeout.total or timeout.connect}s",
            method=method,
            url=url,
        )
        return _Answer(NO_ANSWER, _NO_HEADERS, b"", error)
    except aiohttp.ClientError as exc:
        error = APIConnectionError(
            f"{method} {url} failed: {exc.__class__.__name__}: {exc}", method=method, url=url
        )
        return _Answer(NO_ANSWER, _NO_HEADERS, b"", error)
    except Exception:
        if not session.closed:
            raise
        # The client was closed under this call; aiohttp then fails in ways of its own
        # ("Session is closed", an assertion on its connector). The caller reports it.
        error = APIConnectionError(
            f"{method} {url}: the session was closed", method=method, url=url
        )
        return _Answer(NO_ANSWER, _NO_HEADERS, b"", error)
    return answer


def _log_attempt(
    method: str, url: str, answer: _Answer, started: float, attempt: int, secret: str
) -> None:
    """One line per attempt: what was sent, what came back, how long, the request id.

    The request id is the server's text: a copy of ``secret`` (the token) in it is masked.
    """
    elapsed = (time.perf_counter() - started) * 1e3
    if answer.error is not None:
        log.info(
            "%s %s -> no answer after %.1f ms (attempt %d): %s",
            method, url, elapsed, attempt + 1, answer.error,
        )  # fmt: skip
        return
    log.info(
        "%s %s -> %d in %.1f ms (attempt %d, request id %s)",
        method, url, answer.status, elapsed, attempt + 1,
        mask_text(answer.headers.get("X-Request-Id", "-"), secret),
    )  # fmt: skip


class _BodyCap:
    """The largest body a client reads (decoded), with a quick test for the usual answer."""

    __slots__ = ("digits", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.digits = len(str(limit))

    def surely_fits(self, headers: Mapping[str, str]) -> bool:
        """Whether the answer's size is known, below the limit, and will not be inflated.

        Compares the number of digits of ``Content-Length`` (no int parsing on every call):
        fewer digits than the limit's is surely smaller; the rest is read as a stream.
        """
        length = headers.get("Content-Length")
        return (
            length is not None and len(length) < self.digits and "Content-Encoding" not in headers
        )


async def _read_capped(resp: aiohttp.ClientResponse, limit: int, method: str, url: str) -> bytes:
    """The decoded body, read as a stream and refused once it passes ``limit`` bytes.

    aiohttp inflates a compressed body a bounded chunk at a time as it is read, so a
    gzip bomb stops here after ``limit`` bytes instead of inflating in memory.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise APIResponseValidationError(
                f"{method} {url} answered {resp.status} with a body over the client's limit "
                f"of {limit:,} bytes (max_response_bytes); the rest was not read",
                method=method,
                url=url,
                status_code=resp.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def build_status_error(
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    *,
    secret: str = "",
) -> APIStatusError:
    """Turn an error answer (JSON, FastAPI 422, or a proxy's HTML page) into a typed error.

    Every copy of ``secret`` (the client's token, which some servers echo back in a 401)
    is masked in the body and headers the error carries, in the forms servers echo it
    (``_masking``: percent-encoded, JSON-escaped, another letter case, cut short).
    """
    if secret:
        raw = mask_bytes(raw, secret)
        items = list(headers.items())
        masked = [(key, mask_text(value, secret)) for key, value in items]
        if masked != items:
            headers = CIMultiDict(masked)  # still case-insensitive, repeats kept
    body: Any
    try:
        body = mask_json(_loads(raw), secret) if raw else None  # escapes decoded by now
    except ValueError:
        body = mask_text(raw[:500].decode("utf-8", "replace"), secret)
    message = ""
    details: list[ValidationErrorDetail] = []
    if isinstance(body, dict):
        msg = body.get("message")
        detail = body.get("detail")
        if isinstance(msg, str):
            message = msg
        if isinstance(detail, str) and not message:
            message = detail
        elif isinstance(detail, list):
            for item in detail:
                if isinstance(item, dict):
                    loc = item.get("loc")
                    msg = item.get("msg")
                    kind = item.get("type")
                    details.append(
                        ValidationErrorDetail(
                            loc=tuple(loc) if isinstance(loc, list) else (),
                            msg=msg if isinstance(msg, str) else "",  # null: no words
                            type=kind if isinstance(kind, str) else "",
                        )
                    )
            if details and not message:
                message = "; ".join(str(d) for d in details)
    if not message:
        reason = _REASONS.get(status, "error")
        kind = "an HTML page" if isinstance(body, str) and "<" in body[:100] else "no message"
        message = f"{reason} ({kind})"
    cls = error_class_for(status)
    common: dict[str, Any] = {
        "status_code": status,
        "method": method,
        "url": url,
        "body": body,
        "headers": headers,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=parse_retry_after(headers), **common)
    if cls is UnprocessableEntityError:
        return UnprocessableEntityError(message, errors=details, **common)
    return cls(message, **common)


_REASONS: Final = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
