"""How a client reaches the API: proxy, TLS verification, connection pool size.

Defaults follow what requests and httpx users expect: the standard environment is honoured
(``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``, ``SSL_CERT_FILE`` /
``SSL_CERT_DIR`` through OpenSSL's default paths) unless ``trust_env=False``. An explicit
``proxy=`` wins over the environment; ``ssl=`` takes an ``SSLContext``, a CA bundle (file or
directory), or ``False`` (verification off, with a warning).

Everything is resolved once, when the client is made: every request goes to the one base
URL, so its proxy is looked up then (``urllib.request``'s reading of the environment),
and the session gets it per request. aiohttp's own ``trust_env=True`` is not used: it reads
``~/.netrc`` in a worker thread on every request (a thread hop on the hot path), and a
matching netrc entry makes every call fail ("Cannot combine AUTHORIZATION header with AUTH
argument").
"""

from __future__ import annotations

import os
import ssl as _ssl
import urllib.request
import warnings
from typing import Any, Final, Union
from urllib.parse import urlsplit

import attrs

from ._logging import log
from .errors import ConfigurationError

__all__ = [
    "DEFAULT_CONNECTION_LIMIT",
    "InsecureTLSWarning",
    "NetworkConfig",
    "SSLArg",
    "resolve_network",
]

DEFAULT_CONNECTION_LIMIT: Final = 100

SSLArg = Union[_ssl.SSLContext, str, "os.PathLike[str]", bool, None]


class InsecureTLSWarning(UserWarning):
    """A client was made with ``ssl=False``: TLS certificates are not verified."""


@attrs.frozen
class NetworkConfig:
    """The resolved network settings of a client (the proxy's credentials kept out of repr)."""

    proxy: str | None = attrs.field(default=None, repr=False)
    trust_env: bool = True
    ssl: _ssl.SSLContext | bool = True  # True: aiohttp's default context
    connection_limit: int = DEFAULT_CONNECTION_LIMIT

    def session_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``aiohttp.ClientSession`` beyond the connector."""
        return {"trust_env": False}  # the environment was read once, see the module note

    def connector_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``aiohttp.TCPConnector``."""
        return {"limit": self.connection_limit, "ssl": self.ssl}


def resolve_network(
    *,
    proxy: str | None,
    trust_env: bool,
    ssl: SSLArg,
    connection_limit: int | None,
    base_url: str,
) -> NetworkConfig:
    """Check the network arguments; raise ``ConfigurationError`` naming the bad one.

    Without ``proxy``, and with ``trust_env``, the environment's proxy for ``base_url``.
    """
    if not isinstance(trust_env, bool):
        raise ConfigurationError(f"trust_env must be True or False, got {trust_env!r}")
    if proxy is None and trust_env:
        proxy = _env_proxy(base_url)
    return NetworkConfig(
        proxy=_check_proxy(proxy),
        trust_env=trust_env,
        ssl=_ssl_setting(ssl, trust_env),
        connection_limit=_check_limit(connection_limit),
    )


def _env_proxy(base_url: str) -> str | None:
    """The proxy the environment names for ``base_url`` (``NO_PROXY`` honoured), if any."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(base_url)
    host = parts.netloc.rpartition("@")[2]
    if not proxies or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    found = proxies.get(parts.scheme) or proxies.get("all")
    if found and urlsplit(found).scheme not in ("http", "https"):
        log.warning("ignoring the environment's proxy for %s: only http(s) proxies", parts.scheme)
        return None
    return found or None


def _check_proxy(proxy: str | None) -> str | None:
    if proxy is None:
        return None
    if not isinstance(proxy, str):
        raise ConfigurationError(f"proxy must be a URL string, got {type(proxy).__name__}")
    parts = urlsplit(proxy)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The URL may carry credentials: name the scheme, never echo the value.
        raise ConfigurationError(
            f"proxy must be an http:// or https:// URL with a host (got scheme "
            f"{parts.scheme or 'none'!r})"
        )
    return proxy


def _check_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_CONNECTION_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"connection_limit must be a positive int, got {limit!r}")
    return limit


def _ssl_setting(value: SSLArg, trust_env: bool) -> _ssl.SSLContext | bool:
    if value is False:
        warnings.warn(
            "ssl=False: TLS certificates are not verified, so anyone on the network path can "
            "read and change the traffic, API token included",
            InsecureTLSWarning,
            stacklevel=4,
        )
        return False
    if isinstance(value, _ssl.SSLContext):
        return value
    if value is None or value is True:
        return True if trust_env else _context_ignoring_env()
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        try:
            if os.path.isdir(path):
                return _ssl.create_default_context(capath=path)
            return _ssl.create_default_context(cafile=path)
        except (OSError, _ssl.SSLError) as exc:
            raise ConfigurationError(f"ssl: cannot load the CA bundle {path!r}: {exc}") from None
    raise ConfigurationError(
        f"ssl must be an SSLContext, a CA bundle path, True or False, got {type(value).__name__}"
    )


def _context_ignoring_env() -> _ssl.SSLContext:
    """A verifying context from OpenSSL's built-in CA paths, not ``SSL_CERT_FILE``/``_DIR``."""
    paths = _ssl.get_default_verify_paths()
    context = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)  # verifies hosts and certificates
    cafile = paths.openssl_cafile if os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if os.path.isdir(paths.openssl_capath) else None
    if cafile or capath:
        context.load_verify_locations(cafile=cafile, capath=capath)
    return context
