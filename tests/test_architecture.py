"""The import boundaries of pyproject.toml's ``[tool.importlinter]`` hold (``lint-imports``).

CI runs ``lint-imports`` as its own step; running it here too means a change that breaks a
boundary fails the test suite that every contributor runs before landing, with import-linter's
report (which import, along which chain) in the failure message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.import_contracts import cycle_through, strongly_connected

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(cwd)])}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
            "--no-cache",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_contracts_are_kept() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


# --- the acyclic contract type (tests/import_contracts.py) -----------------------------------
def test_strongly_connected_finds_every_cycle_and_only_cycles() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a
        "d": {"e"},
        "e": {"d"},  # d <-> e
        "f": {"f", "a"},  # a self-import is no cycle between modules
        "g": set(),
    }
    components = strongly_connected(graph, lambda n: graph[n])
    assert components == [["a", "b", "c"], ["d", "e"]]
    assert cycle_through("a", {"a", "b", "c"}, lambda n: graph[n]) == ["a", "b", "c"]
    assert strongly_connected({"x": {"y"}, "y": set()}, lambda n: {"x": {"y"}, "y": set()}[n]) == []


def test_strongly_connected_is_not_limited_by_recursion_depth() -> None:
    n = 5000  # a chain far deeper than Python's recursion limit, closed into one cycle
    graph = {f"m{i}": {f"m{(i + 1) % n}"} for i in range(n)}
    (component,) = strongly_connected(graph, lambda m: graph[m])
    assert len(component) == n


def test_acyclic_sees_the_cycle_through_an_init_that_acyclic_siblings_misses(
    tmp_path: Path,
) -> None:
    # The shape of issue 13's __version__ cycle: the package imports a module that imports
    # the package back.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from ._transport import send\n__version__ = '1'\n")
    (package / "_transport.py").write_text("from . import __version__\n\ndef send(): ...\n")
    (package / "_retry.py").write_text("")
    (tmp_path / ".importlinter").write_text(
        textwrap.dedent(
            """
            [importlinter]
            root_package = pkg
            contract_types =
                acyclic: tests.import_contracts.AcyclicContract

            [importlinter:contract:siblings]
            name = siblings
            type = acyclic_siblings
            ancestors = pkg

            [importlinter:contract:all]
            name = all
            type = acyclic
            packages = pkg
            """
        )
    )
    proc = lint_imports(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "siblings KEPT" in proc.stdout
    assert "all BROKEN" in proc.stdout
    assert "pkg -> pkg._transport -> pkg" in proc.stdout


def test_every_boundary_of_issue_13_has_a_contract() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    kinds = {contract["type"] for contract in contracts}
    assert {"acyclic_siblings", "acyclic"} <= kinds
    everything = next(c for c in contracts if c["type"] == "acyclic")
    assert set(everything["packages"]) == {"codegen_async", "codegen_sync"}
    cycles = next(c for c in contracts if c["type"] == "acyclic_siblings")
    assert set(cycles["ancestors"]) == {"codegen_async", "codegen_sync"}
    sources = {source for c in contracts for source in c.get("source_modules", ())}
    assert {
        "codegen_async.*",
        "codegen_async",
        "codegen_async.models",
        "codegen_async.errors",
        "codegen_async.emulator",
        "codegen_sync",
    } <= sources
