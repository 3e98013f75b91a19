"""Client settings: arguments first, then ``CODEGEN_*`` environment variables, then defaults."""

from __future__ import annotations

import ipaddress
import os
from typing import Final
from urllib.parse import urlsplit

import attrs

from ._validation import check_id
from .errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "ClientConfig", "SecretStr", "Timeout", "redact", "resolve_config"]

DEFAULT_BASE_URL: Final = "https://api.codegen.com"
ENV_TOKEN: Final = "CODEGEN_API_TOKEN"
ENV_ORG_ID: Final = "CODEGEN_ORG_ID"
ENV_BASE_URL: Final = "CODEGEN_API_BASE_URL"
ENV_RATE_LIMIT_BACKEND: Final = "CODEGEN_RATE_LIMIT_BACKEND"


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


@attrs.frozen
class Timeout:
    """Time limits of one request, in seconds (``None``: no limit).

    ``total`` bounds the whole request including reading the body; ``connect`` bounds
    getting a connection (from the pool or a new one).
    """

    total: float | None = 60.0
    connect: float | None = 10.0

    @classmethod
    def coerce(cls, value: float | Timeout | None) -> Timeout:
        """Accept a number (the total, connect capped by it) or a ``Timeout``."""
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(total=None, connect=None)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
        return cls(total=float(value), connect=min(float(value), cls().connect or float(value)))


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


def resolve_config(
    *,
    token: str | None,
    org_id: int | str | None,
    base_url: str | None,
    timeout: float | Timeout | None,
    max_retries: int,
    rate_limit_backend: str | None,
    allow_insecure_http: bool,
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

    url = (base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing to send the API token over plain http to {parts.hostname}; "
            "use https, or pass allow_insecure_http=True"
        )

    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative int, got {max_retries!r}")

    backend = rate_limit_backend or os.environ.get(ENV_RATE_LIMIT_BACKEND) or None
    return ClientConfig(
        token=SecretStr(token.strip()),
        org_id=org_id,
        base_url=url,
        timeout=DEFAULT_TIMEOUT if timeout is None else Timeout.coerce(timeout),
        max_retries=max_retries,
        rate_limit_backend=backend,
    )
