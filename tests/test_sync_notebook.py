"""A real notebook (nbformat + nbclient + ipykernel) uses ``codegen_sync.Agent``.

The kernel runs its own asyncio event loop while it executes a cell, which is where
``asyncio.run`` fails; the notebook checks that, then uses the blocking client in plain
cells and from a coroutine awaited at the top level, against the emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from codegen_async.emulator import EmulatorThread

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = Path(__file__).resolve().parent / "notebooks" / "sync_agent.ipynb"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0) as emulator:
        yield emulator


def test_notebook_runs_against_the_emulator(
    emu: EmulatorThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The kernel is a child process: it inherits these.
    monkeypatch.setenv("CODEGEN_API_TOKEN", emu.token)
    monkeypatch.setenv("CODEGEN_ORG_ID", str(emu.org_id))
    monkeypatch.setenv("CODEGEN_API_BASE_URL", emu.base_url)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        startup_timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError if any cell fails

    outputs = [
        "".join(out.get("text", "") for out in cell.get("outputs", []))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    errors = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert errors == []
    assert "asyncio.run: asyncio.run() cannot be called from a running event loop" in outputs[1]
    assert "completed" in outputs[4]
    assert "not found: 404" in outputs[4]
    # Models and pages render as HTML tables (``_repr_html_``).
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    page_html = code[5].outputs[0]["data"]["text/html"]
    assert page_html.startswith("<table") and "Page 1 of " in page_html
    assert page_html.count("<tr>") == 4  # the header and three users
    run_html = code[6].outputs[0]["data"]["text/html"]
    assert ">status_raw<" in run_html and ">completed<" in run_html and ">COMPLETE<" in run_html
    stats = emu.stats()
    assert stats["runs_created"] >= 1
