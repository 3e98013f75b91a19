"""The emulator's JSON answers: one encoder, and a response builder that counts each status."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from ._stats import Stats

__all__ = ["JSON", "Reply", "dumps", "json_response", "reply"]

JSON: Final = "application/json"

# What the request pipeline decides before it is sent: status, JSON payload, extra headers.
Reply = tuple[int, Any, Mapping[str, str] | None]


def dumps(payload: Any) -> bytes:
    """Compact UTF-8 JSON.

    A lone surrogate (``"\\ud800"`` is valid JSON, so a request can carry one, and a 422
    echoes its input) cannot be encoded as UTF-8; ``backslashreplace`` writes it back as
    the same ``\\ud800`` escape, inside its JSON string, instead of failing with a 500.
    """
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "backslashreplace"
    )


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response, not counted (the admin routes)."""
    return web.Response(body=dumps(payload), status=status, content_type=JSON, headers=headers)


def reply(
    stats: Stats, status: int, payload: Any, headers: Mapping[str, str] | None
) -> web.Response:
    """A JSON answer of the API, counted by status in ``stats``."""
    stats.answered(status)
    return web.Response(body=dumps(payload), status=status, content_type=JSON, headers=headers)
