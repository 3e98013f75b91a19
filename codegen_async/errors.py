"""The exceptions the SDK raises.

Every error derives from :class:`CodegenError`::

    CodegenError
    ├── ConfigurationError (also ValueError)      no token / org id, bad base URL
    ├── ClientClosedError (also RuntimeError)     the client was closed (before or during
    │                                              the call)
    ├── APIConnectionError (also ConnectionError) the request did not get an answer
    │   └── APITimeoutError (also TimeoutError)   ... within the timeout
    ├── APIResponseValidationError                 a 2xx answer of the wrong shape
    ├── WaitTimeoutError (also TimeoutError)       wait_for_run() ran out of time
    ├── RunWaitError                               wait_for_runs() / as_completed(): some
    │   │                                          runs ended in error (``.errors`` by id)
    │   └── RunWaitTimeoutError (also TimeoutError) ... some were unfinished at the deadline
    └── APIStatusError                             the server answered 4xx / 5xx
        ├── BadRequestError             400
        ├── AuthenticationError         401
        ├── PaymentRequiredError        402  (agent-run limit of the plan reached)
        ├── PermissionDeniedError       403
        ├── NotFoundError               404
        ├── UnprocessableEntityError    422  (``.errors``: the validation errors as data)
        ├── RateLimitError              429  (``.retry_after`` in seconds)
        └── InternalServerError         5xx

Messages name the cause, the HTTP method and the URL; they never contain the API token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from multidict import CIMultiDict

if TYPE_CHECKING:
    from .models import AgentRun, RunStatus

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "CodegenError",
    "ConfigurationError",
    "InternalServerError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RunWaitError",
    "RunWaitTimeoutError",
    "UnprocessableEntityError",
    "ValidationErrorDetail",
    "WaitTimeoutError",
]


class CodegenError(Exception):
    """Base class of every error raised by this SDK."""


class ConfigurationError(CodegenError, ValueError):
    """The client is missing a setting (token, organization id) or has an invalid one."""


class ClientClosedError(CodegenError, RuntimeError):
    """The client was closed: before this call, or while the call was in flight.

    A call in flight when :meth:`~codegen_async.AsyncAgent.aclose` runs ends at once
    with this error; it is never retried.
    """


class APIConnectionError(CodegenError, ConnectionError):
    """The request got no HTTP answer: DNS, refused or reset connection, TLS failure."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url


class APITimeoutError(APIConnectionError, TimeoutError):
    """The request got no complete answer within its timeout."""


class APIResponseValidationError(CodegenError):
    """The server answered 2xx, but the body is not what the API describes.

    ``path`` names the offending field (``$.items[3].id``) when one can be named.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status_code: int = 200,
        path: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.status_code = status_code
        self.path = path
        self.body = body


@attrs.frozen
class ValidationErrorDetail:
    """One entry of a 422 answer: where (``loc``), what (``msg``), and its kind (``type``)."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.loc)
        what = self.msg or self.type or "invalid"
        return f"{where}: {what}" if where else what


class APIStatusError(CodegenError):
    """The server answered with an error status.

    Attributes: ``status_code``, ``message`` (the server's own words where it gave any),
    ``method`` and ``url`` of the request, ``body`` (parsed JSON or text), ``headers``,
    and ``request_id`` when the server sent one.
    """

    status: ClassVar[int | None] = None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str = "",
        url: str = "",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.method = method
        self.url = url
        self.body = body
        # Case-insensitive, as HTTP headers are: ``headers["x-request-id"]`` finds
        # ``X-Request-Id`` (a plain dict lost that, and with it every request id).
        self.headers: Mapping[str, str] = CIMultiDict(headers or {})
        self.request_id: str | None = self.headers.get("X-Request-Id")
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.status_code} {self.message}{where}"


class BadRequestError(APIStatusError):
    """400: the request was refused, e.g. a sandbox with no logs to analyse."""

    status = 400


class AuthenticationError(APIStatusError):
    """401: the token is missing, malformed or revoked."""

    status = 401


class PaymentRequiredError(APIStatusError):
    """402: the billing plan's allotment of agent runs is used up."""

    status = 402


class PermissionDeniedError(APIStatusError):
    """403: the token's user has no access to this organization or resource."""

    status = 403


class NotFoundError(APIStatusError):
    """404: the run, user, sandbox or repository does not exist (in this organization)."""

    status = 404


class UnprocessableEntityError(APIStatusError):
    """422: the server rejected the parameters; ``errors`` lists each problem as data."""

    status = 422

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[ValidationErrorDetail] = (),
        **kwargs: Any,
    ) -> None:
        self.errors: tuple[ValidationErrorDetail, ...] = tuple(errors)
        super().__init__(message, **kwargs)


class RateLimitError(APIStatusError):
    """429: the quota is used up; ``retry_after`` says how many seconds to wait, if known."""

    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)

    def _describe(self) -> str:
        text = super()._describe()
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g}s"
        return text


class InternalServerError(APIStatusError):
    """5xx: the server failed; safe reads are retried before this is raised."""


class WaitTimeoutError(CodegenError, TimeoutError):
    """A wait for an agent run ran out of time; ``last_status`` is the last status seen."""

    def __init__(
        self, agent_run_id: int, timeout: float, last_status: RunStatus | str | None
    ) -> None:
        self.agent_run_id = agent_run_id
        self.timeout = timeout
        self.last_status = last_status
        super().__init__(
            f"agent run {agent_run_id} did not finish within {timeout:g}s "
            f"(last status: {last_status or 'unknown'})"
        )


class RunWaitError(CodegenError):
    """Waiting on several agent runs ended in an error for some of them.

    Raised by ``wait_for_runs()``, and by ``as_completed()`` once it has yielded every run
    that finished. One run's error never stops the wait on the others.

    Attributes:
        errors: The error of each run that could not be waited on, by run id:
            ``NotFoundError`` (the run disappeared), ``APIResponseValidationError`` (its
            answer could not be parsed), ``WaitTimeoutError`` (still unfinished at the
            deadline, with its ``last_status``), or another ``APIStatusError``.
        runs: The runs that did finish, by id.
    """

    def __init__(
        self,
        errors: Mapping[int, CodegenError],
        runs: Mapping[int, AgentRun] | None = None,
    ) -> None:
        self.errors: dict[int, CodegenError] = dict(errors)
        self.runs: dict[int, AgentRun] = dict(runs or {})
        shown = ", ".join(
            f"{run_id} ({type(error).__name__})" for run_id, error in list(self.errors.items())[:5]
        )
        more = f" and {len(self.errors) - 5} more" if len(self.errors) > 5 else ""
        super().__init__(
            f"{len(self.errors)} of {len(self.errors) + len(self.runs)} agent runs could not "
            f"be waited on: {shown}{more}"
        )

    @property
    def agent_run_ids(self) -> list[int]:
        """The ids of the runs that ended in error, in the order they were asked for."""
        return list(self.errors)


class RunWaitTimeoutError(RunWaitError, TimeoutError):
    """The deadline passed before every run finished.

    ``errors`` holds a :class:`WaitTimeoutError` (with ``last_status``) for each unfinished
    run, besides any other run's error; ``runs`` the runs that finished in time.
    """


_BY_STATUS: dict[int, type[APIStatusError]] = {
    cls.status: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        PaymentRequiredError,
        PermissionDeniedError,
        NotFoundError,
        UnprocessableEntityError,
        RateLimitError,
    )
    if cls.status is not None
}


def error_class_for(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status_code >= 500:
        return InternalServerError
    return _BY_STATUS.get(status_code, APIStatusError)
