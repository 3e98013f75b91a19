"""``fill_path`` gives what ``str.format_map`` gives: the same text, the same errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen_async._endpoints import ENDPOINTS
from codegen_async._path import fill_path


def outcome(function: Any, *args: Any) -> Any:
    try:
        return ("ok", function(*args))
    except Exception as exc:
        return ("error", type(exc), str(exc))


VALUES = st.integers() | st.text(max_size=6) | st.none() | st.booleans() | st.floats()
TEMPLATES = [
    *sorted({e.path for e in ENDPOINTS.values()}),
    "",
    "/plain",
    "/{{literal}}/{a}",
    "{a}{b}",
    "/x/{a}/{a}",
    "/{}",
    "/{0}",
    "/{a.real}",
    "/{a[0]}",
    "/{a!r}",
    "/{a:>4}",
    "/{a",
    "/a}",
    '/"quote"/{a}',
    "/back\\slash/{a}",
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_same_text_and_errors_as_format_map(template: str) -> None:
    @settings(max_examples=40, deadline=None, database=None)
    @given(st.dictionaries(st.sampled_from(["a", "b", "org_id", "agent_run_id", "x"]), VALUES))
    def check(values: dict[str, object]) -> None:
        for names in (values, {"org_id": 1, "agent_run_id": 2, "user_id": 3, "repo_id": 4}):
            got = outcome(fill_path, template, names)
            assert got == outcome(template.format_map, names)
            assert got == outcome(fill_path, template, names)  # compiled once, then reused

    check()
