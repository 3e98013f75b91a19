"""Raw responses: ``agent.with_raw_response.<method>(...)`` -> :class:`RawResponse`.

Like openai-python's ``with_raw_response``, the raw view sends exactly what the plain method
sends and hands back the HTTP answer itself (status, case-insensitive headers, request id,
elapsed time, body) with ``parse()`` for what the plain method would have returned. The
design differs in one way: no marker header travels through the call and no flag is tested
on the plain path. The view holds a client derived like ``with_options`` (same session,
limiters, stats, settings) whose transport is a :class:`RawTransport`, which only changes
the last step, turning the answer into a model, into wrapping it. An error status still
raises the usual typed error.

Only methods that make one request have a raw form (each operation of the API, and
``request``); waiting, iterating and ``*_and_wait`` methods make many and are refused.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from ._endpoints import ENDPOINTS, Endpoint
from ._transport import Transport, _Answer

__all__ = ["AsyncRawResponses", "RawResponse", "RawTransport", "raw_methods"]

T = TypeVar("T")


class RawResponse(Generic[T]):
    """One HTTP answer of the API, before it is turned into a model.

    Attributes:
        status_code: The HTTP status (2xx: error statuses raise as usual).
        headers: The answer's headers, case-insensitive (``headers["x-request-id"]``).
        request_id: The server's ``X-Request-Id``, if it sent one.
        elapsed: Seconds the whole call took (quota wait and retries included).
        content: The body as bytes.
        method, url: What was requested.
    """

    __slots__ = (
        "_parse",
        "_parsed",
        "content",
        "elapsed",
        "headers",
        "method",
        "status_code",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        status_code: int,
        headers: Mapping[str, str],
        content: bytes,
        parse: Callable[[], T],
    ) -> None:
        self.method = method
        self.url = url
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.elapsed = 0.0
        self._parse = parse
        self._parsed: list[T] = []

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id`` (quote it to support), or ``None``."""
        return self.headers.get("X-Request-Id")

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as decoded JSON (``None`` for an empty body)."""
        return json.loads(self.content) if self.content else None

    def parse(self) -> T:
        """What the plain method returns (a model, a page, ...), built once and kept.

        Raises:
            APIResponseValidationError: the body does not fit the API's description.
        """
        if not self._parsed:
            self._parsed.append(self._parse())
        return self._parsed[0]

    def __repr__(self) -> str:
        return f"<RawResponse {self.status_code} {self.method} {self.url}>"


class RawTransport(Transport):
    """A transport whose successful answers come back as :class:`RawResponse`."""

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        raw: RawResponse[Any] = await super().request(*args, **kwargs)
        raw.elapsed = time.perf_counter() - started
        return raw

    def _parse(self, endpoint: Endpoint, url: str, answer: _Answer) -> Any:
        def parse() -> Any:
            return Transport._parse(self, endpoint, url, answer)

        return RawResponse(endpoint.method, url, answer.status, answer.headers, answer.body, parse)


_RAW_METHODS: dict[type, frozenset[str]] = {}


def raw_methods(client_class: type) -> frozenset[str]:
    """The methods of ``client_class`` that make exactly one request: the API's operations
    (one per row of the endpoint table) and ``request``."""
    methods = _RAW_METHODS.get(client_class)
    if methods is None:
        names = {
            name
            for name in ENDPOINTS
            if inspect.iscoroutinefunction(getattr(client_class, name, None))
        }
        methods = _RAW_METHODS[client_class] = frozenset(names | {"request"})
    return methods


class AsyncRawResponses:
    """``agent.with_raw_response``: every one-request method, returning a :class:`RawResponse`.

    ``raw = await agent.with_raw_response.get_run(run_id)``; ``raw.parse()`` is the
    ``AgentRun`` that ``await agent.get_run(run_id)`` returns.
    """

    __slots__ = ("_client",)

    def __init__(self, client: Any) -> None:
        self._client = client  # derived: the parent's session, limiters, settings

    def __getattr__(self, name: str) -> Callable[..., Awaitable[RawResponse[Any]]]:
        methods = raw_methods(type(self._client))
        if name not in methods:
            raise AttributeError(
                f"with_raw_response has no {name!r}: only methods that make one request have "
                f"a raw form ({', '.join(sorted(methods))})"
            )
        method: Callable[..., Awaitable[RawResponse[Any]]] = getattr(self._client, name)
        return method

    def __dir__(self) -> list[str]:
        return sorted(raw_methods(type(self._client)))

    def __repr__(self) -> str:
        return f"<AsyncRawResponses of {self._client!r}>"
