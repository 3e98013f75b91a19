"""Per-call settings: what one call changes from its client's.

A method's ``timeout=``, ``deadline=``, ``extra_headers=``, ``extra_query=`` and
``extra_body=`` are checked and gathered here into one :class:`CallOptions`, built only
when a call is given any of them: the plain call passes ``None`` down and pays nothing.
The transport applies an options object at one place (``Transport.request``), so a
later per-call setting is one field here and one line there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._config import Timeout, check_seconds
from ._validation import QueryPairs, check_extra_query, check_headers, check_json_object

__all__ = ["CallOptions", "call_options"]


@attrs.define(slots=True)
class CallOptions:
    """One call's settings; ``None`` keeps the client's."""

    timeout: Timeout | None = None
    deadline: float | None = None
    headers: Mapping[str, str] | None = None
    query: QueryPairs | None = None
    body: Mapping[str, Any] | None = None


def call_options(
    timeout: float | Timeout | None = None,
    deadline: float | None = None,
    extra_headers: Mapping[str, str] | None = None,
    extra_query: Mapping[str, object] | None = None,
    extra_body: Mapping[str, object] | None = None,
) -> CallOptions | None:
    """The checked options of one call, or ``None`` when it was given none."""
    if (
        timeout is None
        and deadline is None
        and extra_headers is None
        and extra_query is None
        and extra_body is None
    ):
        return None
    return CallOptions(
        timeout=None if timeout is None else Timeout.coerce(timeout),
        deadline=None if deadline is None else check_seconds("deadline", deadline),
        headers=None if extra_headers is None else check_headers("extra_headers", extra_headers),
        query=None if extra_query is None else check_extra_query("extra_query", extra_query),
        body=None if extra_body is None else check_json_object("extra_body", extra_body),
    )
