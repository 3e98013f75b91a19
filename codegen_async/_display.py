"""How models look to people: the display form and the HTML table Jupyter shows.

The display form is the wire form (``to_dict()``) with one change, made once here so that
every user-facing output agrees: a run's ``status`` is the documentation's word
(``"failed"``) and the server's word (``"ERROR"``) follows it as ``status_raw``. The CLI's
tables and ``--json``, and the notebook view below, all read it.

The HTML is a plain ``<table>`` (no script, no external style): every key and value comes
from the server, so each is escaped; long text is cut so that a page of runs stays a table
a person can read; a field marked secret (the Slack connect token) is never shown.
"""

from __future__ import annotations

import html
import json
from typing import Any, Final

import attrs

from .models import Page, RunStatus, _HasStatus, _Model

__all__ = ["display_dict", "model_html"]

_CELL: Final = 80  # characters of a value in a page's table
_FIELD: Final = 2000  # characters of a value in one model's table
_HIDDEN: Final = "(hidden)"
_STYLE: Final = "text-align:left;vertical-align:top"


def display_dict(model: _Model) -> dict[str, Any]:
    """``model.to_dict()`` with each run status as the documentation's word + ``status_raw``."""
    data: dict[str, Any] = _display(model, model.to_dict())
    return data


def _display(obj: Any, data: Any) -> Any:
    if not isinstance(data, dict) or not attrs.has(type(obj)):
        return data
    for field in attrs.fields(type(obj)):
        if field.name.startswith("_") or field.name not in data:
            continue  # private (``_is_admin``: its wire name is in data already) or not sent
        value = getattr(obj, field.name)
        if attrs.has(type(value)):
            data[field.name] = _display(value, data[field.name])
        elif isinstance(value, list) and isinstance(data[field.name], list):
            data[field.name] = [
                _display(v, d) for v, d in zip(value, data[field.name], strict=False)
            ]
    if not isinstance(obj, _HasStatus) or "status" not in data:
        return data
    status: RunStatus | None = obj.status
    shown: dict[str, Any] = {}
    for key, value in data.items():
        if key == "status":
            shown["status"] = None if status is None else str.__str__(status)
            shown["status_raw"] = None if status is None else status.raw
        elif key != "status_raw":
            shown[key] = value
    return shown


def model_html(model: _Model) -> str:
    """An HTML table of a model (one row per field) or of a page (one row per item)."""
    if isinstance(model, Page):
        return _page_html(model)
    data = display_dict(model)
    secret = _secret_keys(model)
    rows = "".join(
        f'<tr><th style="{_STYLE}">{_esc(key)}</th>'
        f'<td style="{_STYLE};white-space:pre-wrap">'
        f"{_HIDDEN if key in secret else _cell(value, _FIELD)}</td></tr>"
        for key, value in data.items()
    )
    caption = f'<caption style="text-align:left"><b>{_esc(type(model).__name__)}</b></caption>'
    return f'<table class="codegen-model">{caption}{rows}</table>'


def _page_html(page: Any) -> str:
    items = page.items
    dicts = [display_dict(i) if attrs.has(type(i)) else i for i in items]
    kind = type(items[0]).__name__ if items else "item"
    caption = (
        f'<caption style="text-align:left"><b>Page {page.page} of {page.pages}</b>: '
        f"{len(items)} {_esc(kind)}{'' if len(items) == 1 else 's'} of {page.total}</caption>"
    )
    columns: dict[str, None] = {}
    for data in dicts:
        if isinstance(data, dict):
            columns.update(dict.fromkeys(data))
    secret = set().union(*(_secret_keys(i) for i in items[:1]))
    head = "".join(f'<th style="{_STYLE}">{_esc(c)}</th>' for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_STYLE}">{_HIDDEN if c in secret else _cell(_get(data, c), _CELL)}</td>'
            for c in columns
        )
        + "</tr>"
        for data in dicts
    )
    return f'<table class="codegen-page">{caption}<tr>{head}</tr>{body}</table>'


def _get(data: Any, key: str) -> Any:
    return data.get(key, "") if isinstance(data, dict) else data


def _secret_keys(model: Any) -> set[str]:
    if not attrs.has(type(model)):
        return set()
    return {f.name for f in attrs.fields(type(model)) if f.metadata.get("secret")}


def _cell(value: Any, limit: int) -> str:
    if value is None:
        return '<span style="opacity:0.5">None</span>'
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or not isinstance(value, (list, dict)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    if limit == _CELL:
        text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _esc(text)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
