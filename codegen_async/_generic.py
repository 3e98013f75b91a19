"""``AsyncAgent.request``: an operation the SDK does not know yet, sent like the known ones.

The call gets an ad-hoc row of the endpoint table: the same transport (auth, retries,
errors, deadline, logging), retried on server errors only when the method is idempotent
(GET, PUT, DELETE), and rate-limited with the default quota (the one the documentation
gives every operation without its own, as this client keeps it: scaled, or off), keyed by
the method and the path exactly as given.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from ._endpoints import Endpoint
from ._ratelimit import RateLimits

__all__ = ["generic_endpoint", "generic_limits"]

# Method -> whether it is idempotent (may be retried after the server saw it).
_METHODS: Final = {"GET": True, "PUT": True, "DELETE": True, "POST": False, "PATCH": False}
# An operation whose documented quota is the default one: this client's copy of it is the
# default quota as this client keeps it.
_DEFAULT_QUOTA_OF: Final = "get_current_user"


def generic_endpoint(method: str, path: str) -> Endpoint:
    """The table row of ``method path``; ``ValueError`` for a method or path it cannot send.

    The path must start with ``/`` (it is appended to the client's base URL: anything else
    could move the request, and the token, to another host) and carry no query string (use
    ``params=``).
    """
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"path must be a string starting with '/', got {path!r}")
    if any(c in path for c in "?#") or any(c.isspace() or ord(c) < 32 for c in path):
        raise ValueError(
            f"path must have no query string, fragment, space or control character "
            f"(pass query parameters as params=), got {path!r}"
        )
    verb = method.upper()
    return Endpoint(
        name=f"{verb} {path}",
        method=verb,  # type: ignore[arg-type]  # checked above
        path=path,
        response=Any,
        idempotent=_METHODS[verb],
    )


def generic_limits(limits: RateLimits, endpoint: Endpoint) -> RateLimits:
    """``limits`` with the default quota for ``endpoint`` (none if limiting is off)."""
    if not limits.enabled:
        return limits
    quota = limits.quotas.get(_DEFAULT_QUOTA_OF)
    return attrs.evolve(limits, quotas={**limits.quotas, endpoint.name: quota})
