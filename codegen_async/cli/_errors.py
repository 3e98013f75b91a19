"""Exit statuses of ``codegen-api`` and the one-line messages for each kind of failure.

Every failure the CLI expects ends as one line on standard error that names its cause,
and a distinct exit status, so that scripts can tell a typo from an outage from a quota:

====  ==========================================================================
0     success
1     a waited-for agent run ended without completing (failed or cancelled)
2     usage or configuration: bad arguments (also those the SDK refuses before any
      request: NaN in ``--metadata``, NUL or non-UTF-8 in a prompt), no token, no
      organization id, an ``--output`` file that cannot be written
3     the API refused or failed the call (4xx other than 429, 5xx, network)
4     rate limited (429): the message says when to retry
5     a wait ran out of time (``--timeout``)
74    the result could not be written to ``--output`` (it was printed; the message
      says why the file was not written)
70    an unexpected error (a bug: ``--debug`` shows the traceback)
130   interrupted (Ctrl-C)
141   standard output was closed early (``| head``)
====  ==========================================================================
"""

from __future__ import annotations

import re
import time
from enum import IntEnum
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

from .._endpoints import ENDPOINTS, Endpoint, path_regex
from ..errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CodegenError,
    ConfigurationError,
    PermissionDeniedError,
    RateLimitError,
    RunWaitError,
    RunWaitTimeoutError,
    UnprocessableEntityError,
    WaitTimeoutError,
)

__all__ = ["CLIError", "ExitCode", "describe_error", "redact"]


class ExitCode(IntEnum):
    """The exit statuses of ``codegen-api`` (see the module docstring)."""

    OK = 0
    RUN_NOT_COMPLETED = 1
    USAGE = 2
    API_ERROR = 3
    RATE_LIMITED = 4
    WAIT_TIMEOUT = 5
    UNEXPECTED = 70
    OUTPUT_ERROR = 74
    INTERRUPTED = 130
    BROKEN_PIPE = 141


class CLIError(Exception):
    """A failure the CLI reports as one line with the given exit status."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked (belt and braces: never print it)."""
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "***")
    return text


def _compile(endpoint: Endpoint) -> re.Pattern[str]:
    return re.compile(path_regex(endpoint.path) + "$")  # the base URL's path may come first


_ROUTES: list[tuple[re.Pattern[str], Endpoint]] = []


def endpoint_for(method: str, url: str) -> Endpoint | None:
    """The operation a request URL belongs to, or ``None``."""
    if not _ROUTES:
        _ROUTES.extend((_compile(e), e) for e in ENDPOINTS.values())
    path = urlsplit(url).path
    for pattern, endpoint in _ROUTES:
        if endpoint.method == method and pattern.search(path):
            return endpoint
    return None


def _where(exc: APIStatusError | APIConnectionError | APIResponseValidationError) -> str:
    return f" ({exc.method} {urlsplit(exc.url).path})" if exc.method else ""


def _clause(text: str) -> str:
    """The server's sentence as a clause to continue after ``;`` ("later.; retry" reads badly)."""
    return text.rstrip().rstrip(".;,") or text


def _retry_hint(exc: RateLimitError) -> str:
    if exc.retry_after is not None:
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + exc.retry_after))
        return f"retry in {exc.retry_after:.1f}s (after {at})"
    endpoint = endpoint_for(exc.method, exc.url)
    if endpoint is not None:
        quota = endpoint.quota
        return (
            f"retry after the quota window: the documented limit of {endpoint.name} is "
            f"{quota.limit} requests per {quota.window:g}s"
        )
    return "retry in a minute"


# The SDK's modules (and packages) that check arguments before any request; their
# TypeError and ValueError mean "you asked for something invalid", not "the CLI has a bug".
_ARGUMENT_CHECKS: Final = (
    "codegen_async._validation",
    "codegen_async._config",
    "codegen_async._options",
    "codegen_async._polling",
)


def _raised_in(tb: TracebackType | None) -> str | None:
    """The module whose code raised (the innermost frame of the traceback)."""
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_globals.get("__name__")
    return name if isinstance(name, str) else None


def is_argument_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the SDK refusing an argument (a usage error, exit status 2)."""
    if not isinstance(exc, (TypeError, ValueError)):
        return False
    module = _raised_in(exc.__traceback__) or ""
    return any(module == name or module.startswith(f"{name}.") for name in _ARGUMENT_CHECKS)


def describe_error(exc: BaseException, *, org_id: int | None = None) -> tuple[ExitCode, str]:
    """The exit status and the one-line message for an exception the CLI expects.

    Raises:
        TypeError: ``exc`` is not an error the CLI reports as a line (a bug: let it show).
    """
    if isinstance(exc, CLIError):
        return exc.code, exc.message
    if isinstance(exc, RunWaitError) and exc.errors:
        # Report the first run's cause; the status is the timeout's if the deadline passed.
        run_id, first = next(iter(exc.errors.items()))
        code, message = describe_error(first, org_id=org_id)
        if isinstance(exc, RunWaitTimeoutError):
            code = ExitCode.WAIT_TIMEOUT
        more = len(exc.errors) - 1
        tail = f" (and {more} more run{'s' if more > 1 else ''})" if more else ""
        text = message if isinstance(first, WaitTimeoutError) else f"agent run {run_id}: {message}"
        return code, text + tail
    if isinstance(exc, ConfigurationError):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, RateLimitError):
        return (
            ExitCode.RATE_LIMITED,
            f"rate limited (429){_where(exc)}: {_clause(exc.message)}; {_retry_hint(exc)}",
        )
    if isinstance(exc, PermissionDeniedError):
        scope = (
            f" on organization {org_id}"
            if org_id is not None and "/organizations/" in (exc.url)
            else ""
        )
        return (
            ExitCode.API_ERROR,
            f"permission denied (403){scope}: {exc.message}{_where(exc)}; check --org-id / "
            "CODEGEN_ORG_ID, or use a token of a member of that organization",
        )
    if isinstance(exc, AuthenticationError):
        return (
            ExitCode.API_ERROR,
            f"authentication failed (401): {exc.message}{_where(exc)}; check "
            "CODEGEN_API_TOKEN (or --token)",
        )
    if isinstance(exc, UnprocessableEntityError) and exc.errors:
        problems = "; ".join(str(e) for e in exc.errors)
        return ExitCode.API_ERROR, f"invalid request (422){_where(exc)}: {problems}"
    if isinstance(exc, APIStatusError):
        return ExitCode.API_ERROR, f"{exc.status_code} {exc.message}{_where(exc)}"
    if isinstance(exc, APITimeoutError):
        return ExitCode.API_ERROR, f"timed out: {exc.message}"
    if isinstance(exc, APIConnectionError):
        return ExitCode.API_ERROR, f"cannot reach the API: {exc.message}"
    if isinstance(exc, APIResponseValidationError):
        return ExitCode.API_ERROR, f"unexpected answer from the API: {exc.message}"
    if isinstance(exc, WaitTimeoutError):
        return ExitCode.WAIT_TIMEOUT, f"{exc}; raise --timeout to wait longer"
    if isinstance(exc, CodegenError):
        return ExitCode.API_ERROR, str(exc)
    if is_argument_error(exc):
        return ExitCode.USAGE, str(exc)
    raise TypeError(f"not a reportable error: {type(exc).__name__}")
