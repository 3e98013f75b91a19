"""Import time of ``codegen_async`` and ``codegen_sync`` against ``aiohttp`` alone.

Every import runs in a fresh interpreter, measured two ways:

- wall time of ``python -c "import x"`` minus the median wall time of ``python -c "pass"``
  (what a user waits for);
- ``python -X importtime -c "import x"``: the sum of the "self" times of every module the
  statement loads beyond the interpreter's own start-up (less noisy; no process start).

Statements are interleaved, after one untimed warm-up each (which also writes the ``.pyc``
files a normal installation has), and each figure is a median. ``PYTHONDONTWRITEBYTECODE``
is removed from the children's environment so that, as for users, compiled files are used.

Run it alone with ``python -m benchmarks.bench_import [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Final

from benchmarks._servers import REPO_ROOT

NAME: Final = "import"
TITLE: Final = "Import time in a fresh interpreter"

BARE: Final = "python (bare start)"
# (label, statement). The dependency floor is what the SDK cannot import faster than.
TARGETS: Final = (
    (BARE, "pass"),
    ("aiohttp", "import aiohttp"),
    ("aiohttp + attrs + cattrs", "import aiohttp, attrs, cattrs"),
    ("codegen_async", "import codegen_async"),
    ("codegen_sync", "import codegen_sync"),
    ("httpx", "import httpx"),
    ("codegen_api_client (official)", "import codegen_api_client"),
)
FULL: Final = {"reps": 15}
QUICK: Final = {"reps": 2}
QUICK_TARGETS: Final = (BARE, "aiohttp", "codegen_async", "codegen_sync")
GOAL_SYNC_VS_AIOHTTP: Final = 1.3


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME", "PYTHONSTARTUP")
    }
    existing = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}"
    return env


def _wall(statement: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=REPO_ROOT, env=env, check=True)
    return time.perf_counter() - started


def _importtime(statement: str, env: dict[str, str]) -> dict[str, int]:
    """Module -> self microseconds, from ``-X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    modules: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.split(":", 1)[1].split("|")
        modules[name.strip()] = int(self_us)
    return modules


def _available(statement: str, env: dict[str, str]) -> bool:
    proc = subprocess.run(
        [sys.executable, "-c", statement], cwd=REPO_ROOT, env=env, capture_output=True, check=False
    )
    return proc.returncode == 0


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every import; rows of medians with ratios to aiohttp."""
    reps = (QUICK if quick else FULL)["reps"]
    env = _env()
    wanted = [(label, stmt) for label, stmt in TARGETS if not quick or label in QUICK_TARGETS]
    targets = [(label, stmt) for label, stmt in wanted if _available(stmt, env)]  # warm-up
    missing = [label for label, stmt in wanted if (label, stmt) not in targets]
    walls: dict[str, list[float]] = {label: [] for label, _ in targets}
    selfs: dict[str, list[float]] = {label: [] for label, _ in targets}
    counts: dict[str, list[int]] = {label: [] for label, _ in targets}
    for _ in range(reps):
        for label, stmt in targets:
            walls[label].append(_wall(stmt, env))
        bare = _importtime("pass", env)
        for label, stmt in targets:
            extra = {m: us for m, us in _importtime(stmt, env).items() if m not in bare}
            selfs[label].append(sum(extra.values()) / 1000)
            counts[label].append(len(extra))

    bare_wall = statistics.median(walls[BARE]) * 1000
    wall_ms = {label: statistics.median(v) * 1000 - bare_wall for label, v in walls.items()}
    self_ms = {label: statistics.median(v) for label, v in selfs.items()}
    ref_wall, ref_self = wall_ms.get("aiohttp"), self_ms.get("aiohttp")
    rows = []
    for label, _ in targets:
        is_bare = label == BARE
        rows.append(
            {
                "import": label,
                "wall ms": round(bare_wall if is_bare else wall_ms[label], 1),
                "importtime ms": None if is_bare else round(self_ms[label], 1),
                "modules": None if is_bare else round(statistics.median(counts[label])),
                "wall vs aiohttp": None
                if is_bare or not ref_wall
                else round(wall_ms[label] / ref_wall, 2),
                "importtime vs aiohttp": None
                if is_bare or not ref_self
                else round(self_ms[label] / ref_self, 2),
            }
        )
    notes = [
        f"Median of {reps} fresh interpreters per statement, interleaved, after a warm-up. "
        f"'wall ms': wall time of `python -c \"import x\"` minus the bare start "
        f"({bare_wall:.0f} ms, the first row). 'importtime ms': sum of the self times that "
        "`python -X importtime` reports for the modules the import loads beyond start-up; "
        "'modules': how many.",
    ]
    if "codegen_sync" in self_ms and ref_self and ref_wall:
        by_self = self_ms["codegen_sync"] / ref_self
        by_wall = wall_ms["codegen_sync"] / ref_wall
        verdict = "met" if max(by_self, by_wall) <= GOAL_SYNC_VS_AIOHTTP else "MISSED"
        notes.append(
            f"Goal: importing codegen_sync <= {GOAL_SYNC_VS_AIOHTTP}x importing aiohttp: "
            f"{by_self:.2f}x by importtime, {by_wall:.2f}x by wall time ({verdict})."
        )
    notes.extend(f"{label}: not importable here, skipped" for label in missing)
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "import",
                "y": "importtime ms",
                "series": None,
                "title": "Import time beyond interpreter start, -X importtime (lower is better)",
            }
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Print the rows and notes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_import")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    for row in result["rows"]:
        print(row)
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
