"""Where the CLI's output goes: rich tables for people, one JSON document for scripts.

rich is imported only when something is drawn, so ``codegen-api --json ...`` and
``--version`` never pay for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from .._converter import unstructure
from ..models import RunStatus, parse_timestamp

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

__all__ = [
    "Output",
    "format_time",
    "kv_table",
    "make_table",
    "shorten",
    "status_text",
    "to_json",
]

_STATUS_STYLES = {
    "completed": "bold green",
    "failed": "bold red",
    "cancelled": "yellow",
    "running": "cyan",
    "pending": "cyan",
    "paused": "magenta",
}


def to_json(obj: Any) -> Any:
    """JSON-ready data for a model, a list of models, or plain data (wire field names)."""
    return unstructure(obj)


def shorten(text: str | None, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def format_time(value: str | None) -> str:
    """An API timestamp as local ``YYYY-MM-DD HH:MM:SS`` (the raw text if it is not ISO)."""
    parsed = parse_timestamp(value)
    if parsed is None:
        return value or ""
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: RunStatus | str | None) -> str:
    """A run status as rich markup, coloured by outcome."""
    if status is None:
        return "[dim]unknown[/]"
    style = _STATUS_STYLES.get(str(status))
    return f"[{style}]{status}[/]" if style else str(status)


def make_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table with a header row; cells may be markup strings or renderables."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell if not isinstance(cell, (int, float)) else str(cell) for cell in row))
    return table


def kv_table(pairs: Mapping[str, Any], title: str | None = None) -> Table:
    """A two-column table of labels and values (one record)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs.items():
        table.add_row(key, "" if value is None else value if isinstance(value, str) else str(value))
    return table


class Output:
    """The CLI's two streams: results on stdout, progress and errors on stderr.

    With ``json_mode`` a command prints exactly one JSON document on stdout and nothing
    decorative; without it, results are drawn with rich.
    """

    def __init__(
        self, *, json_mode: bool, stdout: IO[str] | None = None, stderr: IO[str] | None = None
    ) -> None:
        self.json_mode = json_mode
        self._stdout = stdout
        self._stderr = stderr
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def out(self) -> Console:
        """The rich console on standard output."""
        if self._out is None:
            self._out = _console(self._stdout or sys.stdout)
        return self._out

    @property
    def err(self) -> Console:
        """The rich console on standard error (progress displays, notes)."""
        if self._err is None:
            self._err = _console(self._stderr or sys.stderr)
        return self._err

    @property
    def interactive(self) -> bool:
        """Whether live displays make sense (people watching a terminal, not ``--json``)."""
        return not self.json_mode and self.err.is_terminal

    def result(self, data: Any, render: Callable[[], RenderableType | None]) -> None:
        """Print a command's result: ``data`` as JSON, or what ``render`` draws."""
        if self.json_mode:
            stream = self._stdout or sys.stdout
            stream.write(json.dumps(data, indent=2, default=_json_default) + "\n")
            stream.flush()
            return
        renderable = render()
        if renderable is not None:
            self.out.print(renderable)

    def note(self, markup: str) -> None:
        """A remark for people (suppressed with ``--json``), on standard error."""
        if not self.json_mode:
            self.err.print(markup)

    def error_line(self, message: str) -> None:
        """The one line that reports a failure (never styled, so it greps cleanly)."""
        stream = self._stderr or sys.stderr
        stream.write(f"codegen-api: error: {message}\n")
        stream.flush()


def _console(file: IO[str]) -> Console:
    """A rich console whose closed pipe surfaces as ``BrokenPipeError``.

    rich's own reaction is ``SystemExit(1)``, which would blur the CLI's exit statuses;
    ``main`` reports a closed pipe itself.
    """
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return _Console(file=file, highlight=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
