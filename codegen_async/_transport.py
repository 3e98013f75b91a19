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

from ._config import ClientConfig, SecretStr, Timeout
from ._converter import ResponseShapeError, structure
from ._endpoints import Endpoint
from ._ratelimit import REGISTRY, Limiter, RateLimits
from ._retry import NO_ANSWER, NOT_SENT, backoff_delay, may_retry, parse_retry_after
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    UnprocessableEntityError,
    ValidationErrorDetail,
    error_class_for,
)

__all__ = ["Transport", "TransportStats"]

log = logging.getLogger("codegen_async")

USER_AGENT: Final = f"codegen-async/{__version__} (aiohttp/{aiohttp.__version__})"
_JSON_HEADERS: Final = {"Content-Type": "application/json"}


@attrs.define
class TransportStats:
    """Counters of one client: what it sent, retried, and how long the limiter held it."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    rate_limit_waits: int = 0


@attrs.define  # not frozen: a frozen attrs __init__ costs twice as much, on every call
class _Answer:
    """What one attempt brought back: an HTTP answer, or (``error`` set) none.

    Without an answer, ``status`` is ``_retry.NOT_SENT`` or ``_retry.NO_ANSWER``.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    error: APIConnectionError | None = None


_NO_HEADERS: Final[Mapping[str, str]] = {}


def _client_timeout(timeout: Timeout) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeout.total, connect=timeout.connect)


class Transport:
    """One aiohttp session with the client's settings; created lazily in the running loop."""

    def __init__(
        self,
        config: ClientConfig,
        rate_limits: RateLimits,
        *,
        backend: str | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        self.backend = backend
        self.rate_limits = rate_limits
        self.stats = TransportStats()
        self._session = session
        self._owns_session = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._headers = {
            # A SecretStr: the headers show up in tracebacks that print local variables.
            "Authorization": SecretStr(f"Bearer {config.token}"),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._json_headers = {**self._headers, **_JSON_HEADERS}
        self._default_timeout = _client_timeout(config.timeout)
        self._limiters: dict[str, Limiter | None] = {}
        self._backend_attached = False  # holds a share of the backend's per-loop connections
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"<Transport {self.config.base_url} closed={self._closed}>"

    # --- lifecycle -------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
                timeout=self._default_timeout,
                raise_for_status=False,
                auto_decompress=True,
            )
            self._loop = loop
        elif self._loop is not None and self._loop is not loop:
            raise RuntimeError(
                "this client was first used in another event loop; aiohttp sessions are bound "
                "to one loop, so create one client per loop (or use codegen_sync.Agent)"
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session and its connections. Safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            await session.close()
        if self._backend_attached:
            self._backend_attached = False
            await REGISTRY.detach(self.backend)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        session = getattr(self, "_session", None)
        if session is None or session.closed or not getattr(self, "_owns_session", False):
            return
        _warn(
            "codegen_async client was not closed: use 'async with AsyncAgent() as agent' "
            "or 'await agent.aclose()'",
            ResourceWarning,
            stacklevel=2,
        )
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # Close it on its own loop so that no socket is left open.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: loop.create_task(session.close()))

    # --- sending -----------------------------------------------------------------------
    def _limiter(self, endpoint: Endpoint) -> Limiter | None:
        try:
            return self._limiters[endpoint.name]
        except KeyError:
            limiter = REGISTRY.get(
                self.config.base_url,
                self.config.token,
                endpoint,
                self.rate_limits,
                backend=self.backend,
            )
            if limiter is not None and not self._backend_attached:
                self._backend_attached = REGISTRY.attach(self.backend)
            self._limiters[endpoint.name] = limiter
            return limiter

    async def request(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: Timeout | None = None,
    ) -> Any:
        """Send one operation and return its parsed, typed answer.

        Retries what may be retried (see ``_retry``), waits for the route's rate limit
        before every attempt, and raises the SDK's typed errors.
        """
        session = self._session_for_loop()
        url = self.config.base_url + path
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = self._headers if data is None else self._json_headers
        client_timeout = self._default_timeout if timeout is None else _client_timeout(timeout)
        limiter = self._limiter(endpoint)
        attempt = 0
        while True:
            if limiter is not None:
                waited = await limiter.acquire()
                if waited:
                    self.stats.rate_limit_wait_seconds += waited
                    self.stats.rate_limit_waits += 1
            self.stats.requests += 1
            try:
                answer = await _send_once(
                    session, endpoint.method, url, params, data, headers, client_timeout
                )
            finally:
                if limiter is not None:
                    # The slot's window starts once the answer is in (or the attempt
                    # failed): the server has surely counted the request by then.
                    limiter.release()
            if answer.error is None and answer.status < 400:
                return self._parse(endpoint, url, answer)
            error, retry_after = self._failure(endpoint, url, answer, limiter)
            if not may_retry(
                answer.status,
                idempotent=endpoint.idempotent,
                attempt=attempt,
                max_retries=self.config.max_retries,
            ):
                raise error
            if answer.status == 429 and limiter is not None:
                delay = self._rng.uniform(0, 0.05)  # the limiter itself waits out the pause
            else:
                delay = backoff_delay(attempt, retry_after=retry_after, rng=self._rng)
            attempt += 1
            self.stats.retries += 1
            log.info(
                "%s %s failed (%s); retry %d of %d in %.2fs",
                endpoint.method,
                url,
                error.__class__.__name__,
                attempt,
                self.config.max_retries,
                delay,
            )
            await asyncio.sleep(delay)

    def _failure(
        self, endpoint: Endpoint, url: str, answer: _Answer, limiter: Limiter | None
    ) -> tuple[Exception, float | None]:
        """The typed error of a failed attempt and the server's hint of when to come back.

        A 429 also pauses the route's limiter for everyone, for the hinted time (else a
        whole quota window).
        """
        if answer.error is not None:
            return answer.error, None
        error = build_status_error(endpoint.method, url, answer.status, answer.headers, answer.body)
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

    def _parse(self, endpoint: Endpoint, url: str, answer: _Answer) -> Any:
        try:
            payload = _loads(answer.body) if answer.body else None
        except ValueError:
            snippet = answer.body[:120].decode("utf-8", "replace")
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
            raise APIResponseValidationError(
                f"{endpoint.method} {url}: the answer does not match the API's "
                f"{getattr(endpoint.response, '__name__', str(endpoint.response))}: {exc}",
                method=endpoint.method,
                url=url,
                status_code=answer.status,
                path=exc.path,
                body=payload,
            ) from None


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
    params: Mapping[str, str] | None,
    data: bytes | None,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
) -> _Answer:
    """One HTTP exchange; aiohttp's exceptions become the SDK's, returned in the answer."""
    debug = log.isEnabledFor(logging.DEBUG)
    started = time.perf_counter() if debug else 0.0
    try:
        async with session.request(
            method, url, params=params, data=data, headers=headers, timeout=timeout
        ) as resp:
            body = await resp.read()
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
    if debug:
        log.debug(
            "%s %s -> %d (%.1f ms)",
            method,
            url,
            answer.status,
            (time.perf_counter() - started) * 1e3,
        )
    return answer


def build_status_error(
    method: str, url: str, status: int, headers: Mapping[str, str], raw: bytes
) -> APIStatusError:
    """Turn an error answer (JSON, FastAPI 422, or a proxy's HTML page) into a typed error."""
    body: Any
    try:
        body = _loads(raw) if raw else None
    except ValueError:
        body = raw[:500].decode("utf-8", "replace")
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
                    details.append(
                        ValidationErrorDetail(
                            loc=tuple(loc) if isinstance(loc, list) else (),
                            msg=str(item.get("msg", "")),
                            type=str(item.get("type", "")),
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
