"""The import boundaries of pyproject.toml's ``[tool.importlinter]`` hold (``lint-imports``).

CI runs ``lint-imports`` as its own step; running it here too means a change that breaks a
boundary fails the test suite that every contributor runs before landing, with import-linter's
report (which import, along which chain) in the failure message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_every_boundary_of_issue_13_has_a_contract() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    kinds = {contract["type"] for contract in contracts}
    assert "acyclic_siblings" in kinds
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
