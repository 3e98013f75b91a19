"""Write a benchmark run's ``results.json``, ``report.md`` and PNG plots into one folder."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "write_report"]

_STATUS_MARK = {"ok": "ok", "failed": "**FAILED**", "not available": "not available"}


def write_report(out: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Path]:
    """Write everything; return the paths of ``results.json`` and ``report.md``.

    Plots go to ``out/plots/`` (emptied of old PNGs first, so that a report never shows a
    plot from an earlier run). A plot that cannot be drawn is noted in the report.
    """
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    for old in plots_dir.glob("*.png"):
        old.unlink()
    for record in records:
        record["plot_files"] = []
        record["plot_errors"] = []
        if record["status"] != "ok":
            continue
        for i, spec in enumerate(record.get("plots", [])):
            path = plots_dir / f"{_slug(record['name'])}-{i + 1}.png"
            try:
                draw_plot(spec, record["rows"], path)
            except Exception as exc:  # a broken plot must not lose the numbers
                record["plot_errors"].append(f"{spec.get('title', i)}: {exc}")
                print(f"plot {path.name} failed: {exc}", file=sys.stderr)
            else:
                record["plot_files"].append(
                    {"title": spec.get("title", ""), "path": str(path.relative_to(out))}
                )
    results = out / "results.json"
    results.write_text(json.dumps({"meta": meta, "scenarios": records}, indent=2) + "\n")
    report = out / "report.md"
    report.write_text(render_markdown(meta, records))
    return {"results": results, "report": report}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "plot"


# --- Markdown ----------------------------------------------------------------------------
def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A GitHub Markdown table of ``rows``; columns in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    if not columns:
        return "_(no rows)_\n"
    lines = [
        "| " + " | ".join(_cell(c) for c in columns) + " |",
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    lines.extend("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows)
    return "\n".join(lines) + "\n"


def render_markdown(meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """The whole report as Markdown."""
    parts = ["# codegen-async benchmarks\n"]
    if meta.get("quick"):
        parts.append(
            "> **Quick run**: small request counts and one repetition, a smoke test. Do not "
            "quote these numbers; run `python -m benchmarks` for the real ones.\n"
        )
    packages = ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items() if v)
    commit = meta.get("commit") or "unknown"
    if meta.get("uncommitted_changes"):
        commit += " (with uncommitted changes)"
    parts.append(
        markdown_table(
            [
                {"": "Command", "value": f"`{meta.get('command')}`"},
                {"": "Date (UTC)", "value": meta.get("date")},
                {"": "Commit", "value": commit},
                {"": "Python", "value": meta.get("python")},
                {"": "Machine", "value": f"{meta.get('cpu')} × {meta.get('cpu_count')}"},
                {"": "Platform", "value": meta.get("platform")},
                {"": "Load average at start", "value": _load(meta.get("load_average"))},
                {"": "Packages", "value": packages},
                {"": "Total time", "value": f"{meta.get('seconds', 0):.0f} s"},
            ]
        )
    )
    parts.append("\n## Summary\n")
    parts.append(
        markdown_table(
            [
                {
                    "scenario": r["name"],
                    "title": r.get("title", ""),
                    "status": _STATUS_MARK.get(r["status"], r["status"]),
                    "seconds": r.get("seconds"),
                }
                for r in records
            ]
        )
    )
    for record in records:
        parts.append(_section(record))
    return "\n".join(parts)


def _load(load: Any) -> str:
    if not load:
        return "unknown"
    return " / ".join(f"{x:.2f}" for x in load) + " (1 / 5 / 15 min)"


def _section(record: dict[str, Any]) -> str:
    title = record.get("title") or record["name"]
    lines = [f"\n## {title}\n", f"Scenario `{record['name']}` ({record['module']}).\n"]
    status = record["status"]
    if status == "failed":
        lines.append("**FAILED**:\n")
        lines.append("```\n" + str(record.get("error", "")).strip() + "\n```\n")
        return "\n".join(lines)
    if status == "not available":
        lines.append(f"**Not available**: {record.get('reason') or 'no reason given'}\n")
        if not record.get("rows"):
            return "\n".join(lines)
    lines.append(markdown_table(record.get("rows", [])))
    notes = record.get("notes") or []
    if notes:
        lines.append("\n".join(f"- {note}" for note in notes) + "\n")
    for plot in record.get("plot_files", []):
        lines.append(f"![{plot['title']}]({plot['path']})\n")
    for error in record.get("plot_errors", []):
        lines.append(f"- (plot not drawn: {error})\n")
    return "\n".join(lines)


# --- plots -------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def draw_plot(spec: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> None:
    """Draw one ``bar`` or ``line`` plot of ``rows`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_col, y_col, series_col = spec["x"], spec["y"], spec.get("series")
    groups: dict[str, list[tuple[Any, float]]] = {}
    for row in rows:
        y = _number(row.get(y_col))
        if y is None or row.get(x_col) is None:
            continue
        key = str(row.get(series_col)) if series_col else y_col
        groups.setdefault(key, []).append((row[x_col], y))
    if not groups:
        raise ValueError(f"no numeric values in column {y_col!r}")

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    try:
        if spec["kind"] == "bar":
            categories: list[str] = []
            for points in groups.values():
                categories.extend(str(x) for x, _ in points if str(x) not in categories)
            values = {label: {str(x): y for x, y in points} for label, points in groups.items()}
            colors = {label: f"C{i % 10}" for i, label in enumerate(groups)}
            width = 0.8 / max(sum(1 for label in groups if c in values[label]) for c in categories)
            labelled: set[str] = set()
            for j, category in enumerate(categories):
                # Only the series this category has, centred on it: no empty slots.
                present = [label for label in groups if category in values[label]]
                for i, label in enumerate(present):
                    y = values[label][category]
                    bars = ax.bar(
                        j + (i - (len(present) - 1) / 2) * width,
                        y,
                        width,
                        color=colors[label],
                        label=label if series_col and label not in labelled else None,
                    )
                    labelled.add(label)
                    ax.bar_label(bars, labels=[_short(y)], fontsize=7, padding=2)
            ax.set_xticks(range(len(categories)), categories, rotation=15, ha="right")
        else:
            for label, points in groups.items():
                numeric = sorted((x, y) for x, y in points if _number(x) is not None)
                if not numeric:
                    raise ValueError(f"column {x_col!r} is not numeric: cannot draw a line")
                ax.plot(
                    [x for x, _ in numeric],
                    [y for _, y in numeric],
                    marker="o",
                    label=label if series_col else None,
                )
            ax.set_xlabel(x_col)
        ax.set_ylabel(y_col)
        ax.set_title(spec.get("title") or f"{y_col} by {x_col}")
        ax.grid(axis="y", alpha=0.3)
        if series_col:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _short(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
