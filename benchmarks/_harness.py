"""Discover the scenarios, run each in its own subprocess, and collect what they return.

A scenario is a module ``benchmarks/bench_<name>.py`` with a synchronous
``run(quick: bool = False) -> dict[str, Any]`` returning::

    {
        "name": "overhead",                      # short name
        "title": "Per-call overhead of get_run", # one line
        "rows": [{"client": "AsyncAgent", "req/s": 11200, ...}, ...],
        "notes": ["3,000 calls per mode, median of 3", ...],
        "plots": [                               # optional
            {"kind": "bar" | "line", "x": "client", "y": "req/s",
             "series": "mode" | None, "title": "..."},
        ],
    }

Everything must be JSON-ready. A scenario that cannot run here (a feature not built yet, a
missing optional package) raises :class:`benchmarks.NotAvailable` with the reason, or
returns ``"status": "not available"`` and the reason in ``"notes"``; it is reported as such
and does not fail the run. A scenario that raises anything else, exits non-zero, times out
or returns a malformed dictionary is reported as failed, the others still run, and the exit
code is 1.

Each scenario runs in a fresh interpreter (``python -m benchmarks._harness --child NAME``),
so that one scenario's imports, garbage, threads and event loops cannot affect another's.
Nothing it starts outlives the run, however the run is stopped (see ``benchmarks._procs``):
its own session, its standard input a lifeline from the harness, SIGTERM and SIGHUP turned
into a cleanup. Its output is unbuffered, and a scenario stopped by the time limit (or any
SIGTERM) writes every thread's and every asyncio task's stack to its log first
(``benchmarks._stacks``), so that an overrun shows where it waited.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from benchmarks import NotAvailable
from benchmarks._procs import die_with_tree, on_parent_exit, stop_tree
from benchmarks._stacks import dump_stacks_on_sigterm

__all__ = ["discover", "main", "run_scenario", "validate"]

BENCH_DIR: Final = Path(__file__).resolve().parent
REPO_ROOT: Final = BENCH_DIR.parent
DEFAULT_OUT: Final = {
    False: BENCH_DIR / "results" / "latest",
    True: BENCH_DIR / "results" / "quick",
}
DEFAULT_TIMEOUT: Final = {False: 1800.0, True: 300.0}

OK: Final = "ok"
FAILED: Final = "failed"
NOT_AVAILABLE: Final = "not available"

_PLOT_KINDS: Final = ("bar", "line")


def discover() -> list[str]:
    """The scenario names (``bench_overhead.py`` -> ``overhead``), sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))


def select(names: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """The scenarios asked for (``overhead`` or ``bench_overhead``), in discovery order.

    Raises:
        ValueError: a name matches no scenario.
    """
    if not names:
        return list(available)
    wanted = {n.removeprefix("bench_").removesuffix(".py") for n in names}
    unknown = wanted - set(available)
    if unknown:
        raise ValueError(
            f"unknown scenario(s): {', '.join(sorted(unknown))}; available: {', '.join(available)}"
        )
    return [n for n in available if n in wanted]


# --- checking what a scenario returned ---------------------------------------------------
def _is_json_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def validate(result: Any) -> list[str]:
    """Problems with a scenario's returned dictionary (empty when it follows the convention)."""
    if not isinstance(result, dict):
        return [f"run() returned {type(result).__name__}, not a dict"]
    problems = []
    for key in ("name", "title"):
        if not isinstance(result.get(key), str) or not result.get(key):
            problems.append(f"{key!r} must be a non-empty string")
    rows = result.get("rows")
    columns: set[str] = set()
    if not isinstance(rows, list):
        problems.append("'rows' must be a list of dicts")
    else:
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(f"rows[{i}] is {type(row).__name__}, not a dict")
                continue
            for key, value in row.items():
                if not isinstance(key, str):
                    problems.append(f"rows[{i}] has a non-string column {key!r}")
                elif not _is_json_scalar(value):
                    problems.append(
                        f"rows[{i}][{key!r}] must be a string, number, bool or None "
                        f"(finite), got {value!r:.60}"
                    )
                else:
                    columns.add(key)
    notes = result.get("notes", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        problems.append("'notes' must be a list of strings")
    plots = result.get("plots") or []
    if not isinstance(plots, list):
        problems.append("'plots' must be a list")
        plots = []
    for i, plot in enumerate(plots):
        if not isinstance(plot, dict):
            problems.append(f"plots[{i}] must be a dict")
            continue
        if plot.get("kind") not in _PLOT_KINDS:
            problems.append(f"plots[{i}]['kind'] must be one of {_PLOT_KINDS}")
        for key in ("x", "y"):
            if plot.get(key) not in columns:
                problems.append(f"plots[{i}][{key!r}] = {plot.get(key)!r} is not a column")
        series = plot.get("series")
        if series is not None and series not in columns:
            problems.append(f"plots[{i}]['series'] = {series!r} is not a column")
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        problems.append(f"not JSON-ready: {exc}")
    return problems


# --- the child: one scenario in its own interpreter --------------------------------------
def _child(name: str, quick: bool, result_path: Path) -> int:
    """Import and run one scenario; write its dictionary (or why not) to ``result_path``."""
    import importlib

    # Stopped by the harness (its time limit, its own stop): the stacks say where it waited.
    dump_stacks_on_sigterm()
    if stat.S_ISFIFO(os.fstat(0).st_mode):  # the harness's lifeline (not run by hand)
        on_parent_exit(lambda: die_with_tree(f"benchmark {name}: the harness went away"))
    try:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        run = getattr(module, "run", None)
        if not callable(run):
            raise TypeError(f"benchmarks/bench_{name}.py has no run(quick=False) function")
        result = run(quick=quick)
    except NotAvailable as exc:
        outcome: dict[str, Any] = {"status": NOT_AVAILABLE, "reason": str(exc)}
    except BaseException as exc:  # report everything, then fail the child
        traceback.print_exc()
        outcome = {"status": FAILED, "error": f"{type(exc).__name__}: {exc}"}
        result_path.write_text(json.dumps(outcome))
        return 1
    else:
        outcome = {"status": OK, "result": result}
    try:
        text = json.dumps(outcome, allow_nan=False)
    except (TypeError, ValueError) as exc:
        text = json.dumps({"status": FAILED, "error": f"result is not JSON-ready: {exc}"})
    result_path.write_text(text)
    return 0


# --- the parent --------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    existing = os.environ.get("PYTHONPATH")
    path = str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}"
    # Unbuffered: what a scenario printed is in its log even when it is killed.
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}


def run_scenario(name: str, *, quick: bool, timeout: float, log_path: Path) -> dict[str, Any]:
    """Run one scenario in a subprocess; a record with its status, rows and timing.

    The child's standard output and error go to ``log_path``.
    """
    started = time.perf_counter()
    record: dict[str, Any] = {"module": f"benchmarks/bench_{name}.py", "name": name}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks._harness", "--child", name]
        cmd += ["--result", str(result_path)] + (["--quick"] if quick else [])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            # Its own session (process group), so that servers it started die with it
            # even when it is killed before it can stop them; its standard input is a pipe
            # never written to, closed by the kernel if this process dies (its lifeline).
            proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=_child_env(),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            returncode: int | None = None
            try:
                returncode = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.write(f"\n[harness] timed out after {timeout:.0f}s; stopping it\n")
                log.flush()
            finally:
                stop_tree(proc)
                assert proc.stdin is not None
                proc.stdin.close()
        record["seconds"] = round(time.perf_counter() - started, 2)
        outcome = _read_outcome(result_path)
    if returncode is None:
        return {**record, "status": FAILED, "error": f"timed out after {timeout:.0f}s"}
    if outcome is None:
        tail = _tail(log_path)
        return {
            **record,
            "status": FAILED,
            "error": f"exited with code {returncode} without a result" + tail,
        }
    if outcome.get("status") == NOT_AVAILABLE:
        return {**record, "status": NOT_AVAILABLE, "reason": outcome.get("reason", "")}
    if outcome.get("status") != OK or returncode != 0:
        error = outcome.get("error") or f"exited with code {returncode}"
        return {**record, "status": FAILED, "error": error + _tail(log_path)}
    result = outcome["result"]
    problems = validate(result)
    if problems:
        return {
            **record,
            "status": FAILED,
            "error": "malformed result: " + "; ".join(problems[:10]),
        }
    status = NOT_AVAILABLE if result.get("status") == NOT_AVAILABLE else OK
    return {
        **record,
        "status": status,
        "title": result["title"],
        "scenario_name": result["name"],
        "rows": result["rows"],
        "notes": result.get("notes", []),
        "plots": result.get("plots") or [],
        **({"reason": "; ".join(result.get("notes", []))} if status == NOT_AVAILABLE else {}),
    }


@contextmanager
def _cleanup_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``SystemExit`` (as SIGINT raises ``KeyboardInterrupt``), so
    that the running scenario is stopped by ``run_scenario``'s cleanup instead of being left
    behind; a repeated signal is ignored until the cleanup is done."""
    sigs = (signal.SIGTERM, signal.SIGHUP)

    def stop(signum: int, frame: object) -> None:
        for sig in sigs:
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    try:
        previous = {sig: signal.signal(sig, stop) for sig in sigs}
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _read_outcome(path: Path) -> dict[str, Any] | None:
    try:
        outcome: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return outcome


def _tail(log_path: Path, lines: int = 8) -> str:
    try:
        text = log_path.read_text(errors="replace").strip()
    except OSError:
        return ""
    if not text:
        return ""
    return "\n" + "\n".join(text.splitlines()[-lines:])


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _baseline_prefix() -> str:
    """``CODEGEN_BENCH_BASELINE=... `` when the run compares with another checkout."""
    baseline = os.environ.get("CODEGEN_BENCH_BASELINE")
    return f"CODEGEN_BENCH_BASELINE={shlex.quote(baseline)} " if baseline else ""


def environment(argv: Sequence[str], quick: bool) -> dict[str, Any]:
    """Where and how the run happened: machine, Python, packages, commit, command."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": _baseline_prefix()
        + "python -m benchmarks"
        + "".join(f" {shlex.quote(a)}" for a in argv),
        "quick": quick,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(status) if status is not None else None,
        "packages": {
            name: _version(name)
            for name in (
                "codegen-async",
                "aiohttp",
                "attrs",
                "cattrs",
                "httpx",
                "codegen-api-client",
                "matplotlib",
            )
        },
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the codegen-async benchmarks; write results.json, report.md and "
        "PNG plots.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small request counts, one repetition: a smoke run of a few seconds a scenario "
        "(numbers are not meaningful); default output benchmarks/results/quick/",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only these scenarios (e.g. overhead import); default: all",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder; default benchmarks/results/latest/ (quick/ with --quick)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="per-scenario time limit; default 1800 (300 with --quick)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    return parser


def _run_all(names: list[str], *, quick: bool, timeout: float, out: Path) -> list[dict[str, Any]]:
    records = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ...", end="", file=sys.stderr, flush=True)
        record = run_scenario(
            name, quick=quick, timeout=timeout, log_path=out / "logs" / f"{name}.log"
        )
        records.append(record)
        detail = ""
        if record["status"] == FAILED:
            detail = ": " + record["error"].splitlines()[0]
        elif record["status"] == NOT_AVAILABLE:
            detail = ": " + (record.get("reason") or "")[:200]
        print(f" {record['status']} ({record['seconds']:.1f}s){detail}", file=sys.stderr)
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected scenarios and write the report; 0 if none failed, else 1 (2: usage)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.child:
        if args.result is None:
            parser.error("--child needs --result")
        return _child(args.child, args.quick, args.result)

    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    try:
        names = select(args.only, available)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out: Path = (args.out or DEFAULT_OUT[args.quick]).resolve()
    timeout = args.timeout or DEFAULT_TIMEOUT[args.quick]
    meta = environment(args_list, args.quick)

    total = time.perf_counter()
    with _cleanup_on_signals():
        records = _run_all(names, quick=args.quick, timeout=timeout, out=out)
    meta["seconds"] = round(time.perf_counter() - total, 1)

    from benchmarks._report import write_report

    paths = write_report(out, meta, records)
    failed = [r["name"] for r in records if r["status"] == FAILED]
    print(
        f"{len(records) - len(failed)} of {len(records)} scenarios ran without failure "
        f"in {meta['seconds']:.0f}s; report: {paths['report']}",
        file=sys.stderr,
    )
    if failed:
        print(f"failed: {', '.join(failed)} (logs in {out / 'logs'})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
