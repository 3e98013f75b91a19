"""The polling package's shape: one role per module, public names between them, no cycle."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from codegen_async._polling._plan import PollPolicy
from codegen_async._polling._tracking import (
    MAX_MISSES,
    MAX_TRANSIENT_FAILURES,
    OrgLists,
    TrackedRun,
)
from codegen_async.models import AgentRun, RunStatus

PACKAGE = Path(importlib.import_module("codegen_async._polling").__file__ or "").parent
POLICY = PollPolicy(initial=1.0, ceiling=8.0, growth=2.0)


def _imports(path: Path) -> list[tuple[str, str]]:
    """Every ``from <module> import <name>`` of a file, relative modules as written."""
    tree = ast.parse(path.read_text())
    return [
        ("." * node.level + (node.module or ""), alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    ]


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_private_name_crosses_modules(path: Path) -> None:
    for module, name in _imports(path):
        if module.startswith("."):
            assert not name.startswith("_"), f"{path.name} imports {name} from {module}"
        assert "_client" not in module, f"{path.name} imports the client ({module})"


def test_the_package_modules_form_no_cycle() -> None:
    graph = {
        path.stem: {m.lstrip(".") for m, _ in _imports(path) if m.startswith(".") and m[1] == "_"}
        for path in PACKAGE.glob("_*.py")
        if path.stem != "__init__"
    }
    order: list[str] = []
    while graph:
        leaves = sorted(name for name, deps in graph.items() if not deps & set(graph))
        assert leaves, f"import cycle among {sorted(graph)}"
        order.extend(leaves)
        for leaf in leaves:
            del graph[leaf]
    assert order.index("_plan") < order.index("_tracking") < order.index("_engine")


def _run(status: str) -> AgentRun:
    return AgentRun(id=1, organization_id=5, status=RunStatus(status))


def test_tracked_run_observed_reports_status_changes_and_backs_off() -> None:
    tracked = TrackedRun(5, 1)
    assert tracked.observed(_run("ACTIVE"))
    tracked.poll_later(10.0, POLICY)
    assert tracked.next_due == 11.0
    assert not tracked.observed(_run("RUNNING"))  # the same status, another spelling
    tracked.poll_later(10.0, POLICY)
    assert tracked.next_due == 12.0
    tracked.poll_by(10.5)
    assert tracked.next_due == 10.5
    assert tracked.observed(_run("COMPLETE"))


def test_tracked_run_gives_up_after_repeated_transient_failures() -> None:
    tracked = TrackedRun(5, 1)
    gave_up = [tracked.poll_failed(0.0, POLICY) for _ in range(MAX_TRANSIENT_FAILURES)]
    assert gave_up == [False] * (MAX_TRANSIENT_FAILURES - 1) + [True]
    tracked.observed(_run("ACTIVE"))  # a success resets the count
    assert not tracked.poll_failed(0.0, POLICY)


def test_tracked_run_list_evidence() -> None:
    tracked = TrackedRun(5, 1)
    assert not tracked.fetch_alone(use_list=True)
    assert tracked.fetch_alone(use_list=False)
    tracked.missed_on_page(proved_absent=False, was_anchored=False)
    assert not tracked.fetch_alone(use_list=True)  # only estimated: look again
    tracked.missed_on_page(proved_absent=True, was_anchored=False)
    assert tracked.fetch_alone(use_list=True)
    assert tracked.read_alone()  # it had been proved absent
    assert not tracked.read_alone()
    for _ in range(MAX_MISSES):
        tracked.missed_on_page(proved_absent=False, was_anchored=False)
    assert tracked.direct
    tracked.seen_on_page()
    assert not tracked.fetch_alone(use_list=True)
    tracked.direct = True
    tracked.list_changed()
    assert not tracked.direct and tracked.misses == 0


def test_org_lists_stop_filtering_after_two_foreign_runs() -> None:
    org = OrgLists(5)
    assert not org.found_outside_filter()
    assert org.found_outside_filter()
    assert not org.filter_user
    assert not org.found_outside_filter()  # once only
    assert not org.page_failed(broken=False)
    assert not org.page_failed(broken=False)
    assert org.page_failed(broken=False)  # the third transient failure in a row
    org.page_read(0, 0, ())
    assert not org.page_failed(broken=False)
    assert org.page_failed(broken=True) and org.use_list
    org.page_failed(broken=True)
    assert not org.use_list
