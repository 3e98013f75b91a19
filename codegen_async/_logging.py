"""The SDK's logs, switched on from the environment: ``CODEGEN_LOG=debug|info``.

Everything logs under the ``codegen_async`` logger (``codegen_async.ratelimit``,
``codegen_async.polling`` below it) and, as a library should, prints nothing unless asked:
either the application configures ``logging`` itself, or ``CODEGEN_LOG`` is set when a
client is made, which adds one handler writing to standard error:

- ``info``: one line per HTTP attempt (method, URL, status, elapsed milliseconds, the
  server's request id), each retry (why, which attempt, after how long), each wait for quota
  (how long, which operation);
- ``debug``: the same, plus the limiter's and the poller's own decisions.

The handler masks credentials in every line it writes (``Bearer <token>`` and the tokens of
the clients made so far), whatever logger the record came from, so even a record whose
arguments hold a header cannot print the token. Reading the variable costs one dictionary
lookup per client made, and the per-attempt line one ``isEnabledFor`` test when logging is
off.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Final, TextIO

from ._masking import mask_text

__all__ = ["ENV_LOG", "configure_from_env", "log", "register_secret"]

ENV_LOG: Final = "CODEGEN_LOG"
log = logging.getLogger("codegen_async")

_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}
_BEARER: Final = re.compile(r"(Bearer\s+)[^\s'\",;)]+", re.IGNORECASE)
_MASK: Final = "<redacted>"
_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_lock = threading.Lock()
_secrets: set[str] = set()
_handler: _StderrHandler | None = None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the ``sys.stderr`` of the moment (test runners and notebooks swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class _Redact(logging.Filter):
    """Masks ``Bearer ...`` and every registered token (in the forms ``_masking`` knows)
    in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _BEARER.sub(r"\1" + _MASK, message)
        for secret in tuple(_secrets):  # also as servers echo it (encoded, cut short)
            masked = mask_text(masked, secret)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def register_secret(token: str) -> None:
    """Mask ``token`` in what the ``CODEGEN_LOG`` handler writes (short values are skipped)."""
    if len(token) >= 8:  # a very short "token" would mask ordinary words
        with _lock:
            _secrets.add(str(token))


def configure_from_env(secret: str | None = None) -> None:
    """Apply ``CODEGEN_LOG`` (``debug`` or ``info``; anything else: leave logging alone).

    Idempotent: one handler at most, its level following the variable's latest value.
    ``secret`` (the new client's token) is masked from then on, when the handler is on.
    """
    global _handler
    value = os.environ.get(ENV_LOG)
    if not value:
        if secret is not None and _handler is not None:
            register_secret(secret)
        return
    level = _LEVELS.get(value.strip().lower())
    if level is None:
        return
    if secret is not None:
        register_secret(secret)
    with _lock:
        if _handler is None:
            _handler = _StderrHandler()
            _handler.setFormatter(logging.Formatter(_FORMAT))
            _handler.addFilter(_Redact())
            log.addHandler(_handler)
        _handler.setLevel(level)
        log.setLevel(level)
