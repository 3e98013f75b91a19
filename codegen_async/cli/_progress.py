"""The live display of agent runs being waited for (``wait``, ``run --wait``, the demo).

On a terminal it is a rich ``Live`` table on standard error (one row per run, a spinner
while it works, the elapsed time, and a bar of how many have finished) that disappears when
the wait ends, leaving the results on standard output. Elsewhere (CI logs, pipes) each
finished run is reported as one plain line instead, and with ``--json`` nothing is shown.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..models import AgentRun
from ._output import Output, plain, shorten, status_text, styled

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["RunBoard", "run_board"]


class RunBoard:
    """The state of a set of runs being waited for; renders itself with rich."""

    def __init__(self, run_ids: Sequence[int], *, title: str = "Waiting for agent runs") -> None:
        self.title = title
        self.runs: dict[int, AgentRun | None] = dict.fromkeys(run_ids)
        self.started = time.monotonic()
        self.finished_at: dict[int, float] = {}
        self._output: Output | None = None

    @property
    def done(self) -> int:
        """How many runs have reached a terminal status."""
        return len(self.finished_at)

    def update(self, run: AgentRun) -> None:
        """Record a run's latest state (the ``on_update`` callback of the waits)."""
        self.runs[run.id] = run
        if run.is_terminal and run.id not in self.finished_at:
            self.finished_at[run.id] = time.monotonic()
            if self._output is not None:
                elapsed = self.finished_at[run.id] - self.started
                self._output.err.print(
                    styled(
                        f"agent run {run.id}: ",
                        status_text(run.status),
                        f" after {elapsed:.1f}s ({self.done}/{len(self.runs)} finished)",
                    )
                )

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table

        now = time.monotonic()
        table = Table(title=plain(self.title), title_justify="left", header_style="bold")
        table.add_column("Agent run", justify="right")
        table.add_column("Status")
        table.add_column("Elapsed", justify="right")
        table.add_column("Result")
        for run_id, run in self.runs.items():
            end = self.finished_at.get(run_id, now)
            status: RenderableType
            if run is not None and run.is_terminal:
                status = status_text(run.status)
            else:
                label = str(run.status) if run is not None and run.status else "waiting"
                status = Spinner("dots", text=plain(label, "cyan"))
            result = shorten(run.result or run.summary, 50) if run is not None else ""
            table.add_row(str(run_id), status, f"{end - self.started:.1f}s", plain(result))
        total = len(self.runs)
        footer = Table.grid(padding=(0, 1))
        footer.add_row(
            ProgressBar(total=total, completed=self.done, width=30),
            plain(f"{self.done}/{total} finished  {now - self.started:.1f}s"),
        )
        return Group(table, footer)


@contextmanager
def run_board(
    output: Output,
    run_ids: Sequence[int],
    *,
    title: str = "Waiting for agent runs",
    plain: bool = True,
) -> Iterator[RunBoard]:
    """A :class:`RunBoard` shown live while the ``with`` block runs (see module docstring).

    ``plain=False`` drops the one-line reports off a terminal (for callers that print
    their own).
    """
    board = RunBoard(run_ids, title=title)
    if output.json_mode:
        yield board
        return
    if not output.interactive:
        if plain:
            board._output = output
        yield board
        return
    from rich.live import Live

    with Live(board, console=output.err, transient=True, refresh_per_second=10):
        yield board
