"""Argument checks made before any request, so that a bad call costs no quota.

Errors are ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, wrong value),
and always name the argument.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._endpoints import Endpoint, Param

__all__ = [
    "check_choice",
    "check_collections",
    "check_extra_query",
    "check_headers",
    "check_id",
    "check_images",
    "check_json_object",
    "check_metadata",
    "check_params",
    "check_prompt",
    "check_range",
    "check_text",
    "merge_headers",
]

MAX_PROMPT_CHARS: Final = 1_000_000
_DATA_URI = re.compile(
    r"data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[\w-]+=[\w.-]+)*;base64,(?P<data>.*)\Z", re.S
)


def check_id(name: str, value: object) -> int:
    """An identifier: a non-negative ``int`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return value


def _check_param(param: Param, value: object) -> object:
    if value is None:
        if param.required and not param.nullable:
            raise TypeError(f"{param.name} is required")
        return None
    if param.type is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{param.name} must be a bool, got {type(value).__name__}")
        return value
    if param.type is str:
        text = check_text(param.name, value)
        if param.enum is not None and text not in param.enum:
            raise ValueError(f"{param.name} must be one of {', '.join(param.enum)}; got {text!r}")
        return text
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{param.name} must be an int, got {type(value).__name__}")
    # Identifiers are never negative, in the path or in the query (list_runs' user_id).
    is_id = param.location == "path" or param.name.endswith("_id")
    low = 0 if param.minimum is None and is_id else param.minimum
    if low is not None and value < low:
        raise ValueError(f"{param.name} must be >= {low}, got {value}")
    if param.maximum is not None and value > param.maximum:
        raise ValueError(f"{param.name} must be <= {param.maximum}, got {value}")
    return value


def check_params(endpoint: Endpoint, values: Mapping[str, object]) -> dict[str, str]:
    """Check path and query values against the table; return the query string values."""
    query: dict[str, str] = {}
    for param in endpoint.params:
        value = values.get(param.name)
        # Inline, the usual case: an exact non-negative int within the bounds, which
        # ``_check_param`` would return unchanged (a third of the cost of the checks).
        if (
            type(value) is not int
            or param.type is not int
            or value < 0
            or (param.minimum is not None and value < param.minimum)
            or (param.maximum is not None and value > param.maximum)
        ):
            value = _check_param(param, value)
        if param.location == "query" and value is not None:
            if isinstance(value, bool):
                query[param.name] = "true" if value else "false"
            else:
                query[param.name] = str(value)
    return query


def check_choice(endpoint: Endpoint, field: str, value: object, *, label: str = "") -> str:
    """A body field restricted to the values the endpoint table lists for it."""
    assert endpoint.body is not None
    allowed = endpoint.body.enums[field]
    name = label or field
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_range(endpoint: Endpoint, field: str, value: object, *, label: str = "") -> int:
    """An integer body field within the range the endpoint table gives for it."""
    assert endpoint.body is not None
    low, high = endpoint.body.ranges[field]
    name = label or field
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be {low}..{high}, got {value}")
    return value


def check_text(name: str, value: object, *, allow_empty: bool = False) -> str:
    """A string that can be sent as UTF-8 (no lone surrogates, no NUL)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise ValueError(f"{name} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode text (lone surrogate)") from None
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters")
    return value


def check_prompt(name: str, value: object) -> str:
    """A prompt: non-empty text of at most ``MAX_PROMPT_CHARS`` characters."""
    text = check_text(name, value)
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"{name} is {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
    return text


def check_images(value: object) -> list[str] | None:
    """Images: a sequence of base64 ``data:`` URIs (``data:image/png;base64,...``)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError("images must be a list of data URIs")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(f"images[{i}] must be a str data URI, got {type(item).__name__}")
        match = _DATA_URI.match(item)
        if match is None:
            raise ValueError(f"images[{i}] is not a base64 data URI (data:<type>;base64,<data>)")
        try:
            base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"images[{i}] has invalid base64 data") from None
        out.append(item)
    return out


def check_metadata(value: object) -> dict[str, Any] | None:
    """Metadata: a JSON object with string keys, all of its text valid Unicode."""
    if value is None:
        return None
    return check_json_object("metadata", value)


def check_json_object(name: str, value: object) -> dict[str, Any]:
    """A JSON object: string keys, serialisable (no NaN or infinity), valid Unicode text."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {type(key).__name__}")
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be JSON-serialisable: {exc}") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # json.dumps would escape it as "\udcff", which no server can decode as text.
        raise ValueError(f"{name} is not valid Unicode text (lone surrogate)") from None
    return dict(value)


_JSON_KINDS: Final[Mapping[str, type]] = {"string": str, "integer": int, "boolean": bool}


def _check_list(name: str, value: Any, kind: type) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of {kind.__name__}, got {type(value).__name__}")
    for i, item in enumerate(value):
        if (isinstance(item, bool) and kind is not bool) or not isinstance(item, kind):
            raise TypeError(f"{name}[{i}] must be a {kind.__name__}, got {type(item).__name__}")


def _check_map(name: str, value: Any, kind: type) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {type(key).__name__}")
        if (isinstance(item, bool) and kind is not bool) or not isinstance(item, kind):
            raise TypeError(f"{name}[{key!r}] must be a {kind.__name__}, got {type(item).__name__}")


def check_collections(endpoint: Endpoint, values: Mapping[str, object], *, prefix: str) -> None:
    """The list and map fields of a body, by the element types the endpoint table gives.

    ``None`` values are skipped (left unchanged); ``prefix`` names the argument in messages.
    """
    assert endpoint.body is not None
    for field, item_type in endpoint.body.items.items():
        value = values.get(field)
        if value is None:
            continue
        kind = _JSON_KINDS[item_type]
        if "array" in endpoint.body.fields[field]:
            _check_list(prefix + field, value, kind)
        else:
            _check_map(prefix + field, value, kind)


# --- extra request parts (``extra_headers=``, ``extra_query=``, ``extra_body=``) ----------
_TOKEN_CHARS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 field-name
_PROTECTED_HEADERS: Final = frozenset({"authorization"})

QueryValue = str | int | float | bool
QueryPairs = list[tuple[str, str]]


def check_headers(name: str, value: object) -> dict[str, str]:
    """Extra HTTP headers: a mapping of header names to text, sent as given.

    ``Authorization`` is refused: the client sends its own token, and a header that
    replaces it would send a call on another account by accident (use a client with
    ``token=...``). Line breaks and NUL are refused (they would split the header).
    """
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of str to str, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _TOKEN_CHARS.match(key):
            raise ValueError(f"{name}: {key!r} is not a valid HTTP header name")
        if key.lower() in _PROTECTED_HEADERS:
            raise ValueError(
                f"{name} cannot set {key}: the client sends its own token "
                "(create a client with token=... to call with another one)"
            )
        if not isinstance(item, str):
            raise TypeError(f"{name}[{key!r}] must be a str, got {type(item).__name__}")
        if any(c in item for c in "\r\n\x00"):
            raise ValueError(f"{name}[{key!r}] must not contain line breaks or NUL")
        out[key] = item
    return out


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` with ``extra`` winning over a header of the same name in any letter case.

    Keys keep their spelling; values are kept as they are (the token as a ``SecretStr``).
    """
    names = {key.lower() for key in extra}
    merged = {key: value for key, value in base.items() if key.lower() not in names}
    merged.update(extra)
    return merged


def _query_text(name: str, key: str, item: object) -> str:
    if isinstance(item, bool):
        return "true" if item else "false"  # as the SDK sends its own booleans
    if isinstance(item, (int, float)):
        return str(item)
    if isinstance(item, str):
        return check_text(f"{name}[{key!r}]", item, allow_empty=True)
    raise TypeError(
        f"{name}[{key!r}] must be a str, int, float or bool (or a list of them), "
        f"got {type(item).__name__}"
    )


def check_extra_query(name: str, value: object) -> QueryPairs:
    """Extra query parameters as (name, text) pairs; a list value repeats the parameter."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}")
    pairs: QueryPairs = []
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} keys must be non-empty str, got {key!r}")
        if isinstance(item, (list, tuple)):
            pairs.extend((key, _query_text(name, key, one)) for one in item)
        else:
            pairs.append((key, _query_text(name, key, item)))
    return pairs
