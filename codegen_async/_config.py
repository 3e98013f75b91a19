"""Client settings: arguments first, then ``CODEGEN_*`` environment variables, then defaults.

Everything a client is given is checked here, once, at construction: a setting that cannot
work (a base URL with credentials, a port out of range, an infinite or negative timeout)
raises at once with the cause, instead of failing every call later. Numbers of seconds go
through :func:`check_seconds` wherever they are given (client, ``with_options``, a call).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from ._network import NetworkConfig
from ._notgiven import NotGiven
from ._validation import check_headers, check_id
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ClientConfig",
    "SecretStr",
    "Timeout",
    "check_seconds",
    "env_rate_limit_scale",
    "redact",
    "resolve_config",
]

DEFAULT_BASE_URL: Final = "https://api.codegen.com"
ENV_TOKEN: Final = "CODEGEN_API_TOKEN"
ENV_ORG_ID: Final = "CODEGEN_ORG_ID"
ENV_BASE_URL: Final = "CODEGEN_API_BASE_URL"
ENV_RATE_LIMIT_BACKEND: Final = "CODEGEN_RATE_LIMIT_BACKEND"
ENV_RATE_LIMIT_SCALE: Final = "CODEGEN_RATE_LIMIT_SCALE"
# The largest decoded answer read: a log page of 100 long entries is a few MB; a bigger body
# is a broken or hostile server (a 0.4 MB gzip bomb inflates to over a GB).
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024


class SecretStr(str):
    """A credential: used as the text it is, but hidden from ``repr()``.

    Error trackers, debuggers, ``rich`` and ``pytest --showlocals`` print the local
    variables of every frame with ``repr``; a token held as a ``SecretStr`` shows as
    ``'<redacted>'`` there. ``str()``, f-strings and the bytes on the wire are unchanged.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'" if not self.startswith("Bearer ") else "'Bearer <redacted>'"


def redact(value: str | None) -> str | None:
    """``value`` as a :class:`SecretStr` (``None`` and non-strings unchanged)."""
    if isinstance(value, str) and not isinstance(value, SecretStr):
        return SecretStr(value)
    return value


def check_seconds(name: str, value: object) -> float:
    """A duration: a finite number of seconds above zero (``bool`` refused).

    Infinity would overflow the event loop's timers on every call, NaN compares false
    everywhere, and a negative value would silently mean "no limit": all refused here.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        # README: a wrong type raises TypeError, a wrong value ValueError.
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(
            f"{name} must be a finite number of seconds above 0 (or None), got {value!r}"
        )
    return seconds


def _optional_seconds(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None:
            check_seconds(name, value)

    return check


@attrs.frozen
class Timeout:
    """Time limits of one request, in seconds (``None``: no limit).

    ``total`` bounds the whole request including reading the body; ``connect`` bounds
    getting a connection (from the pool or a new one). Each must be a finite number above
    zero, or ``None``.
    """

    total: float | None = attrs.field(default=60.0, validator=_optional_seconds("timeout.total"))
    connect: float | None = attrs.field(
        default=10.0, validator=_optional_seconds("timeout.connect")
    )

    @classmethod
    def coerce(cls, value: float | Timeout | None) -> Timeout:
        """Accept a number (the total, connect capped by it) or a ``Timeout``."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None, connect=None)
        seconds = check_seconds("timeout", value)
        return cls(total=seconds, connect=min(seconds, cls().connect or seconds))


DEFAULT_TIMEOUT: Final = Timeout()


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@attrs.frozen
class ClientConfig:
    """The resolved settings of a client (the token is kept out of ``repr``)."""

    token: str = attrs.field(repr=False)
    org_id: int | None
    base_url: str
    timeout: Timeout
    max_retries: int
    rate_limit_backend: str | None
    deadline: float | None = None
    default_headers: Mapping[str, str] = attrs.field(factory=dict)
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES
    network: NetworkConfig = attrs.field(factory=NetworkConfig)


def resolve_config(
    *,
    token: str | None,
    org_id: int | str | None,
    base_url: str | None,
    timeout: float | Timeout | NotGiven | None,
    max_retries: int,
    rate_limit_backend: str | None,
    allow_insecure_http: bool,
    deadline: float | None = None,
    default_headers: Mapping[str, str] | None = None,
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    network: NetworkConfig | None = None,
) -> ClientConfig:
    """Merge arguments with the environment and check them; raise ``ConfigurationError``."""
    token = redact(token if token is not None else os.environ.get(ENV_TOKEN))
    if not token or not token.strip():
        raise ConfigurationError(
            f"no API token: pass token=... or set the {ENV_TOKEN} environment variable"
        )
    if any(c in token for c in "\r\n"):
        raise ConfigurationError("the API token contains a line break")

    if org_id is None:
        env_org = os.environ.get(ENV_ORG_ID)
        if env_org:
            try:
                org_id = int(env_org.strip())
            except ValueError:
                raise ConfigurationError(
                    f"{ENV_ORG_ID} must be an integer organization id"
                ) from None
    elif isinstance(org_id, str):
        try:
            org_id = int(org_id.strip())
        except ValueError:
            raise ConfigurationError(f"org_id must be an integer, got {org_id!r}") from None
    if org_id is not None:
        org_id = check_id("org_id", org_id)

    url = check_base_url(
        base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL, allow_insecure_http
    )
    check_retries(max_retries)
    if deadline is not None:
        deadline = check_seconds("deadline", deadline)
    try:
        headers = (
            {} if default_headers is None else check_headers("default_headers", default_headers)
        )
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if max_response_bytes is not None and (
        isinstance(max_response_bytes, bool)
        or not isinstance(max_response_bytes, int)
        or max_response_bytes < 1
    ):
        raise ValueError(
            f"max_response_bytes must be a positive int (or None), got {max_response_bytes!r}"
        )

    backend = rate_limit_backend or os.environ.get(ENV_RATE_LIMIT_BACKEND) or None
    return ClientConfig(
        token=SecretStr(token.strip()),
        org_id=org_id,
        base_url=url,
        # Left out: the default; None: no limit (Timeout.coerce), as openai-python reads it.
        timeout=DEFAULT_TIMEOUT if isinstance(timeout, NotGiven) else Timeout.coerce(timeout),
        max_retries=max_retries,
        rate_limit_backend=backend,
        deadline=deadline,
        default_headers=headers,
        max_response_bytes=max_response_bytes,
        network=NetworkConfig() if network is None else network,
    )


def check_retries(max_retries: object) -> int:
    """A number of retries: an ``int`` from 0."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")
    return max_retries


def check_base_url(url: str, allow_insecure_http: bool) -> str:
    """The API root without its trailing slash; ``ConfigurationError`` if it cannot work.

    Refused: anything but http(s), no host, credentials (they would show in reprs and
    errors, and the API authenticates with the token), a port out of range, a query string
    or a fragment (paths are appended to the root), plain http to a host not on loopback
    (unless allowed). Messages never repeat credentials.
    """
    url = url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when out of range or not a number
    except ValueError as exc:
        raise ConfigurationError(f"base_url has an invalid port or host: {exc}") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "base_url must not contain credentials (user:password@); the API token is sent "
            "in the Authorization header"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {url!r}")
    if port == 0:
        raise ConfigurationError(f"base_url has port 0, which no server listens on: {url!r}")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise ConfigurationError(
            f"base_url must not have a query string or fragment (paths are appended to it), "
            f"got {url!r}"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing to send the API token over plain http to {parts.hostname}; "
            "use https, or pass allow_insecure_http=True"
        )
    return url


def env_rate_limit_scale() -> float:
    """``CODEGEN_RATE_LIMIT_SCALE``: the factor for the default quotas' windows (1 if unset).

    Set it to an emulator's time scale (the pytest plugin's ``codegen_emulator_env`` does)
    so that a client built with no arguments keeps the emulator's scaled quotas, and polls
    as often, instead of real minutes.

    Raises:
        ConfigurationError: the variable is not a positive finite number.
    """
    raw = os.environ.get(ENV_RATE_LIMIT_SCALE, "").strip()
    if not raw:
        return 1.0
    try:
        scale = float(raw)
    except ValueError:
        scale = math.nan
    if not (scale > 0 and math.isfinite(scale)):
        raise ConfigurationError(
            f"{ENV_RATE_LIMIT_SCALE} must be a positive number (e.g. 0.01), got {raw!r}"
        )
    return scale
