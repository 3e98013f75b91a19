"""Per-call settings: what one call changes from its client's.

A method's ``timeout=``, ``deadline=``, ``extra_headers=``, ``extra_query=`` and
``extra_body=`` are checked and gathered here into one :class:`CallOptions`, built only
when a call is given any of them: the plain call passes ``None`` down and pays nothing.
``timeout=`` and ``deadline=`` left out (``NOT_GIVEN``) keep the client's; given as
``None`` they remove its limit for this call, as in openai-python.
The transport applies an options object at one place (``Transport.request``), so a
later per-call setting is one field here and one line there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._config import Timeout, check_seconds
from ._notgiven import NOT_GIVEN, NotGiven
from ._validation import QueryPairs, check_extra_query, check_headers, check_json_object

__all__ = ["CallOptions", "call_options"]


@attrs.define(slots=True)
class CallOptions:
    """One call's settings; ``NOT_GIVEN`` (timeout, deadline) or ``None`` keeps the client's.

    A ``deadline`` of ``None`` is "no deadline"; "no timeout" is a :class:`Timeout` of
    ``None`` and ``None``.
    """

    timeout: Timeout | NotGiven = NOT_GIVEN
    deadline: float | NotGiven | None = NOT_GIVEN
    headers: Mapping[str, str] | None = None
    query: QueryPairs | None = None
    body: Mapping[str, Any] | None = None


def call_options(
    timeout: float | Timeout | NotGiven | None = NOT_GIVEN,
    deadline: float | NotGiven | None = NOT_GIVEN,
    extra_headers: Mapping[str, str] | None = None,
    extra_query: Mapping[str, object] | None = None,
    extra_body: Mapping[str, object] | None = None,
) -> CallOptions | None:
    """The checked options of one call, or ``None`` when it was given none."""
    if (
        isinstance(timeout, NotGiven)
        and isinstance(deadline, NotGiven)
        and extra_headers is None
        and extra_query is None
        and extra_body is None
    ):
        return None
    return CallOptions(
        timeout=timeout if isinstance(timeout, NotGiven) else Timeout.coerce(timeout),
        deadline=(
            deadline
            if deadline is None or isinstance(deadline, NotGiven)
            else check_seconds("deadline", deadline)
        ),
        headers=None if extra_headers is None else check_headers("extra_headers", extra_headers),
        query=None if extra_query is None else check_extra_query("extra_query", extra_query),
        body=None if extra_body is None else check_json_object("extra_body", extra_body),
    )
