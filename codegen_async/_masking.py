"""Masking the client's token in what a server sends back, in the forms servers echo it.

Error bodies, error headers, request ids and log lines may hold the token when a server
(or a proxy, or a gateway) echoes the request back. It rarely comes back as sent:

- percent-encoded, when it is echoed inside a URL (``+`` ``/`` ``=`` of a base64-like token
  become ``%2B`` ``%2F`` ``%3D``, in either letter case; ``quote_plus`` too);
- JSON-escaped: ``\\/`` for ``/``, ``\\u002B`` for ``+`` (System.Text.Json's default), any
  character as ``\\uXXXX``. Raw bodies are masked for the escapes above, and every parsed
  body is masked again after decoding (:func:`mask_json`), which covers every escape;
- in another letter case (a header echoed lowercased, ``bearer ...``);
- cut short: a log line or a header echo truncated mid-token. A prefix or suffix of the
  token at least half its length (and 8 characters) is masked too; a short hint such as
  ``cg-l...6b`` is left, as it gives nothing away.

One compiled pattern per token, cached. Used on the error paths and in log lines only. A
token shorter than 8 characters (a test's) is masked as it is only: its other forms would
mask ordinary words.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, Final
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "mask_bytes", "mask_json", "mask_text"]

MASK: Final = "<redacted>"
_MIN_PARTIAL: Final = 8


def _forms(secret: str) -> set[str]:
    """The whole token as servers echo it (the letter case is left to the pattern)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret)[1:-1].replace("/", "\\/"))
    # Every character that is not a letter or digit as \uXXXX (System.Text.Json escapes +).
    forms.add("".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in secret))
    return {form for form in forms if form}


@functools.lru_cache(maxsize=64)
def _pattern(secret: str) -> re.Pattern[str]:
    if len(secret) < _MIN_PARTIAL:  # too short to tell from ordinary words: exact only
        return re.compile(re.escape(secret))
    alternatives = _forms(secret)
    shortest = max(_MIN_PARTIAL, math.ceil(len(secret) / 2))
    for length in range(shortest, len(secret)):  # cut short, at either end
        alternatives.add(secret[:length])
        alternatives.add(secret[-length:])
    # Longest first: an alternation takes the first that matches, so a whole token is not
    # masked as its half with the rest left showing.
    ordered = sorted(alternatives, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)


def mask_text(text: str, secret: str) -> str:
    """``text`` with the token, in any form above, replaced by ``<redacted>``."""
    if not secret or not text:
        return text
    return _pattern(secret).sub(MASK, text)


def mask_bytes(raw: bytes, secret: str) -> bytes:
    """``raw`` (a body, in any encoding) masked as :func:`mask_text` does."""
    if not secret or not raw:
        return raw
    text = raw.decode("utf-8", "surrogateescape")  # lossless for bytes that are not UTF-8
    masked = mask_text(text, secret)
    return raw if masked == text else masked.encode("utf-8", "surrogateescape")


def mask_json(value: Any, secret: str) -> Any:
    """A decoded JSON value with every string (and key) masked: escapes are gone by now."""
    if not secret:
        return value
    if isinstance(value, str):
        return mask_text(value, secret)
    if isinstance(value, list):
        return [mask_json(item, secret) for item in value]
    if isinstance(value, dict):
        return {mask_text(k, secret): mask_json(v, secret) for k, v in value.items()}
    return value
