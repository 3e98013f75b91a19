"""Where the CLI's output goes: rich tables for people, one JSON document for scripts.

rich is imported only when something is drawn, so ``codegen-api --json ...`` and
``--version`` never pay for it.

Text from the server (prompts, summaries, results, names) is data, never markup: the table
helpers wrap plain strings in ``rich.text.Text``, so ``[/etc/app.conf]`` or ``[link=...]``
in a run's summary print as written instead of crashing the CLI or turning into links.
:func:`literal` also shows terminal control characters (ESC sequences, other C0/C1 codes,
bidirectional overrides) as ``\\x1b``-style escapes, so a run's text cannot move the
cursor, retitle the terminal or hide what follows. Styled cells are ``Text`` objects built
here (:func:`status_text`). In ``--json`` the same text travels JSON-escaped.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from .._converter import unstructure
from ..models import RunStatus, parse_timestamp

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "Output",
    "format_time",
    "kv_table",
    "literal",
    "make_table",
    "plain",
    "shorten",
    "status_text",
    "styled",
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


# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings,
# overrides and isolates (text that reads differently from what it is).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_control(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def literal(text: str) -> str:
    """``text`` with terminal control characters shown as escapes (``ESC`` -> ``\\x1b``).

    Tabs and newlines are kept; everything else that a terminal would act on instead of
    print is made visible.
    """
    return _CONTROL.sub(_escape_control, text)


def plain(text: str | None, style: str = "") -> Text:
    """Server (or user) text as a rich ``Text``: printed as written, never as markup."""
    from rich.text import Text

    return Text(literal(text or ""), style=style)


def styled(*parts: str | tuple[str, str] | Text) -> Text:
    """One ``Text`` from pieces: strings printed literally, ``(text, style)`` pairs styled,
    ``Text`` kept as it is (e.g. ``styled(("✓", "green"), " saved to ", path)``)."""
    from rich.text import Text

    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(literal(part[0]), style=part[1])
        else:
            out.append(literal(part))
    return out


def to_json(obj: Any) -> Any:
    """JSON-ready data for a model, a list of models, or plain data (wire field names).

    Models give their display form (``to_display_dict()``): a run's ``status`` is the
    documentation's word (``completed``, ``failed``, ...), the one the tables show, with the
    server's own (``COMPLETE``, ``ERROR``, ...) beside it as ``status_raw``, so
    ``jq 'select(.status == "failed")'`` works whatever the server sends.
    """
    if isinstance(obj, (list, tuple)):
        return [to_json(item) for item in obj]
    display = getattr(obj, "to_display_dict", None)
    if callable(display):
        return display()
    return unstructure(obj)


def shorten(text: str | None, width: int = 60) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    if not text:
        return ""
    line = " ".join(literal(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def format_time(value: str | None) -> str:
    """An API timestamp as local ``YYYY-MM-DD HH:MM:SS`` (the raw text if it is not ISO)."""
    parsed = parse_timestamp(value)
    if parsed is None:
        return value or ""
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: RunStatus | str | None) -> Text:
    """A run status as a ``Text``, coloured by outcome (an unknown word printed as sent)."""
    if status is None:
        return plain("unknown", "dim")
    word = str.__str__(status)
    return plain(word, _STATUS_STYLES.get(word, ""))


def _cell(value: Any) -> RenderableType:
    """A table cell: renderables as they are, anything else as literal text."""
    if value is None:
        return plain("")
    if isinstance(value, str) or not hasattr(value, "__rich_console__"):
        return plain(str(value))
    rendered: RenderableType = value
    return rendered


def make_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A rich table with a header row; strings are printed literally (never as markup),
    ``Text`` and other renderables as they are."""
    from rich.table import Table

    table = Table(
        title=None if title is None else plain(title),
        title_justify="left",
        header_style="bold",
        expand=False,
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(cell) for cell in row))
    return table


def kv_table(pairs: Mapping[str, Any], title: str | None = None) -> Table:
    """A two-column table of labels and values (one record); values as in :func:`make_table`."""
    from rich.table import Table

    table = Table(
        title=None if title is None else plain(title),
        title_justify="left",
        show_header=False,
        box=None,
        padding=(0, 2),
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs.items():
        table.add_row(plain(key), _cell(value))
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

    def note(self, text: str | Text) -> None:
        """A remark for people (suppressed with ``--json``), on standard error.

        A string is printed literally; build a ``Text`` for styles.
        """
        if not self.json_mode:
            self.err.print(plain(text) if isinstance(text, str) else text)

    def error_line(self, message: str) -> None:
        """The one line that reports a failure (never styled, so it greps cleanly).

        The message may quote the server, so control characters (line breaks included:
        it stays one line) are shown as escapes.
        """
        stream = self._stderr or sys.stderr
        one_line = literal(message).replace("\n", "\\n")
        stream.write(f"codegen-api: error: {one_line}\n")
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
