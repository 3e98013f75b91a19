"""``check_params`` takes the usual value (an exact int in range) inline: same results.

The inline test must accept only values ``_check_param`` returns unchanged; anything else
goes through ``_check_param``, so results and errors are those of the general rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_async._endpoints import ENDPOINTS, Endpoint
from codegen_async._validation import _check_param, check_params

WITH_PARAMS = [e for e in ENDPOINTS.values() if e.params]


class _Number(int):
    pass


VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-3, max_value=300)
    | st.integers(min_value=0, max_value=120).map(_Number)
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.sampled_from(["API", "SLACK", "", " ", "\x00", "1"])
)


def reference(endpoint: Endpoint, values: Mapping[str, object]) -> dict[str, str]:
    """``check_params`` before its inline test: every value through ``_check_param``."""
    query: dict[str, str] = {}
    for param in endpoint.params:
        value = _check_param(param, values.get(param.name))
        if param.location == "query" and value is not None:
            query[param.name] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
    return query


def outcome(function: Any, endpoint: Endpoint, values: Mapping[str, object]) -> Any:
    try:
        return ("ok", function(endpoint, values))
    except Exception as exc:
        return ("error", type(exc), str(exc))


@pytest.mark.parametrize("endpoint", WITH_PARAMS, ids=[e.name for e in WITH_PARAMS])
def test_inline_check_agrees_with_the_general_rules(endpoint: Endpoint) -> None:
    names = [p.name for p in endpoint.params]

    @settings(max_examples=60, deadline=None, database=None)
    @given(st.fixed_dictionaries({}, optional={name: VALUES for name in names}))
    def check(values: dict[str, object]) -> None:
        assert outcome(check_params, endpoint, values) == outcome(reference, endpoint, values)

    check()
