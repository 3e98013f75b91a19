"""Instructions per ``get_run`` call, counted by valgrind: the overhead figures without noise.

On a shared 2-core VM, CPU time per call moves by ±10-50 % between repetitions of the same
code, so a change of a few percent in the SDK's own work cannot be seen in
``bench_overhead``. The number of machine instructions the client process executes in user
space does not depend on the neighbours: this scenario counts them with valgrind's
callgrind for the same clients, server and calls as ``bench_overhead`` (its ``--child``
mode, one subprocess per client and mode).

Each client runs twice, with ``SHORT`` and ``LONG`` calls after the same warm-up; the
difference divided by ``LONG - SHORT`` is the cost of one call, with start-up, imports and
warm-up cancelled out. Kernel work (system calls, page faults) is not counted; the
overhead scenario's CPU times include it.

With ``CODEGEN_BENCH_BASELINE=/path/to/another/checkout`` the SDK's clients from that
checkout are counted too (rows marked ``@ baseline``), which is how a change is checked to
cost the hot path nothing. Needs ``valgrind`` on ``PATH`` (``apt-get install valgrind``);
without it the scenario is reported as not available.

Run it alone with ``python -m benchmarks.bench_instructions [--quick] [--baseline PATH]``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from benchmarks import NotAvailable
from benchmarks._servers import REPO_ROOT, ServerInfo, serve_get_run
from benchmarks.bench_overhead import (
    ASYNC_CONCURRENCY,
    BASELINE_ENV,
    BASELINE_MARK,
    child_command,
)

NAME: Final = "instructions"
TITLE: Final = "User-space instructions per get_run call (valgrind, deterministic)"

# (row name, client, calls in flight, from the baseline checkout?)
FULL_CASES: Final = (
    ("raw aiohttp", "raw aiohttp", 1, False),
    ("raw aiohttp", "raw aiohttp", ASYNC_CONCURRENCY, False),
    ("AsyncAgent", "AsyncAgent", 1, False),
    ("AsyncAgent", "AsyncAgent", ASYNC_CONCURRENCY, False),
    ("codegen_sync.Agent", "codegen_sync.Agent", 1, False),
    ("AsyncAgent" + BASELINE_MARK, "AsyncAgent", 1, True),
    ("AsyncAgent" + BASELINE_MARK, "AsyncAgent", ASYNC_CONCURRENCY, True),
    ("codegen_sync.Agent" + BASELINE_MARK, "codegen_sync.Agent", 1, True),
)
QUICK_CASES: Final = FULL_CASES[:1] + FULL_CASES[2:3] + FULL_CASES[5:6]
FULL: Final = {"short": 128, "long": 1152, "warmup": 128}
QUICK: Final = {"short": 16, "long": 80, "warmup": 16}

_COLLECTED: Final = re.compile(r"Collected\s*:\s*(\d+)")


def _count(
    client: str, mode: int, calls: int, warmup: int, server: ServerInfo, sdk_path: str | None
) -> int:
    """Instructions the client's whole process executed for ``calls`` calls (callgrind)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd, env = child_command(client, server, calls, warmup, modes=(mode,), sdk_path=sdk_path)
        out_file = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *cmd]
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
        )
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{client} under valgrind failed (exit {proc.returncode}): {tail}")
    return int(found.group(1))


def run(quick: bool = False, baseline: str | None = None) -> dict[str, Any]:
    """Count instructions per call for every case; rows with ratios to raw aiohttp.

    Args:
        quick: Fewer calls and cases (a smoke run).
        baseline: Another checkout of the SDK to count beside this one (default:
            ``$CODEGEN_BENCH_BASELINE``, if set).

    Raises:
        NotAvailable: valgrind is not installed.
    """
    if shutil.which("valgrind") is None:
        raise NotAvailable("valgrind is not installed (apt-get install valgrind)")
    settings = QUICK if quick else FULL
    short, long, warmup = settings["short"], settings["long"], settings["warmup"]
    baseline = baseline or os.environ.get(BASELINE_ENV) or None
    cases = [c for c in (QUICK_CASES if quick else FULL_CASES) if baseline or not c[3]]
    per_call: dict[tuple[str, int], float] = {}
    with serve_get_run() as server, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        # Counts do not depend on load, so the runs may share the cores.
        futures = {
            (name, mode): [
                pool.submit(_count, client, mode, n, warmup, server, baseline if base else None)
                for n in (short, long)
            ]
            for name, client, mode, base in cases
        }
        for key, (f_short, f_long) in futures.items():
            per_call[key] = (f_long.result() - f_short.result()) / (long - short)

    rows: list[dict[str, Any]] = []
    for (name, mode), instructions in per_call.items():
        raw = per_call.get(("raw aiohttp", mode))
        plain = name.removesuffix(BASELINE_MARK)
        now = per_call.get((plain, mode)) if name != plain else None
        rows.append(
            {
                "client": name,
                "in flight": mode,
                "instructions / call": round(instructions),
                "vs raw aiohttp": round(instructions / raw, 3) if raw else None,
                "this checkout vs baseline": round(now / instructions, 4) if now else None,
                "status": "ok",
            }
        )
    notes = [
        f"(instructions after {long} calls - after {short}) / {long - short}, same "
        f"{warmup}-call warm-up; user space only (valgrind callgrind), the client's process.",
    ]
    if baseline:
        notes.append(f"Baseline: {baseline}.")
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "client",
                "y": "instructions / call",
                "series": "in flight",
                "title": "Instructions per get_run call (lower is better)",
            }
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Print the rows and notes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_instructions")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", help="another checkout of the SDK to count beside this one")
    args = parser.parse_args(argv)
    result = run(quick=args.quick, baseline=args.baseline)
    for row in result["rows"]:
        print(row)
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
