"""``AsyncAgent.request``: an operation the SDK does not know yet, sent like the known ones.

The call gets an ad-hoc row of the endpoint table: the same transport (auth, retries,
errors, deadline, logging), retried on server errors only when the method is idempotent
(GET, PUT, DELETE). Its rate limit is keyed, as the server counts, by route template:

- a path of an operation the table knows (``GET /v1/organizations/1/users/7``) is that
  operation's route, so it shares that operation's quota and limiter with the SDK's method;
- else ``route=`` names the template (``/v1/things/{thing_id}``), so calls on several ids
  share one quota; without it the path as given is its own route;
- the quota is ``quota=`` if given (``None``: none), else the client's ``RateLimits.default``:
  the standard quota the documentation gives ordinary endpoints (60 per 30 s), scaled as the
  client's, off when its limiting is off. (It once borrowed ``get_current_user``'s quota,
  so changing that operation's quota silently changed every ``request()``.)
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs

from ._endpoints import ENDPOINTS, Endpoint, Quota, path_regex
from ._notgiven import NotGiven
from ._ratelimit import RateLimits
from ._ratelimit.quotas import check_quota

__all__ = ["generic_endpoint", "generic_limits"]

# Method -> whether it is idempotent (may be retried after the server saw it).
_METHODS: Final = {"GET": True, "PUT": True, "DELETE": True, "POST": False, "PATCH": False}
_PLACEHOLDER: Final = re.compile(r"\{[^/{}]+\}")  # to order the table's routes


def _check_path(what: str, path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"{what} must be a string starting with '/', got {path!r}")
    if any(c in path for c in "?#") or any(c.isspace() or ord(c) < 32 for c in path):
        raise ValueError(
            f"{what} must have no query string, fragment, space or control character "
            f"(pass query parameters as params=), got {path!r}"
        )
    return path


def _template(route: str) -> re.Pattern[str]:
    """A route template as a pattern: each ``{name}`` stands for one path segment."""
    return re.compile(path_regex(route))


# Method -> (pattern, operation), most literal routes first (``/agent/run/resume`` before a
# ``/agent/run/{id}`` of the same method, should one exist).
_KNOWN: Final = {
    verb: [
        (_template(e.path), e)
        for e in sorted(ENDPOINTS.values(), key=lambda e: len(_PLACEHOLDER.findall(e.path)))
        if e.method == verb
    ]
    for verb in _METHODS
}


def generic_endpoint(method: str, path: str, route: str | None = None) -> Endpoint:
    """The table row of ``method path``; ``ValueError`` for what it cannot send.

    The path must start with ``/`` (it is appended to the client's base URL: anything else
    could move the request, and the token, to another host) and carry no query string (use
    ``params=``). ``route`` (a template such as ``/v1/things/{thing_id}``) must match it.
    """
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    _check_path("path", path)
    verb = method.upper()
    if route is not None:
        _check_path("route", route)
        if not _template(route).fullmatch(path):
            raise ValueError(
                f"route {route!r} does not match path {path!r} (each {{name}} stands for "
                f"one path segment)"
            )
    for pattern, known in _KNOWN[verb]:
        if pattern.fullmatch(path):  # the server counts it on that operation's route
            return Endpoint(
                name=known.name,
                method=known.method,
                path=known.path,
                response=Any,
                quota=known.quota,
                idempotent=_METHODS[verb],
            )
    template = path if route is None else route
    return Endpoint(
        name=f"{verb} {template}",
        method=verb,  # type: ignore[arg-type]  # checked above
        path=template,
        response=Any,
        idempotent=_METHODS[verb],
    )


def generic_limits(
    limits: RateLimits, endpoint: Endpoint, quota: Quota | NotGiven | None
) -> RateLimits:
    """``limits`` keeping ``endpoint``'s quota: ``quota`` if given, else the route's own
    (a known operation) or ``limits.default``. Unchanged when limiting is off."""
    if not limits.enabled:
        return limits
    if isinstance(quota, NotGiven):
        if endpoint.name in ENDPOINTS:
            return limits  # the operation's quota, as the client keeps it
        quota = limits.default
    elif quota is not None:
        if not isinstance(quota, Quota):
            raise TypeError(f"quota must be a Quota or None, got {type(quota).__name__}")
        check_quota(quota, what="quota")
    return attrs.evolve(limits, quotas={**limits.quotas, endpoint.name: quota})
