"""The emulator's own speed: how fast it starts, and how many requests it serves per core.

Startup is measured three ways: a fresh interpreter importing ``codegen_async.emulator``;
``Emulator(...)`` plus ``await start()`` in a warm process (seeding the world, binding the
socket); and ``python -m codegen_async.emulator`` from spawn to its first line on standard
output (what a test suite or the CLI waits for).

Throughput: the emulator runs in its own process, pinned to one core where the platform
allows (the client gets the others), with rate limiting off. A raw aiohttp client in this
process sends ``get_run`` (one run, ~0.5 KB) and ``get_users`` (a page of 30 users,
~7 KB) at concurrency 1 and 32; each mode gets a warm-up and then a fixed number of calls,
repeated, with medians reported. Besides the client-side rate, the server process's CPU
time per request (``psutil``) gives its capacity on one core: requests per CPU-second.

The goals of issue 3 are checked in the notes, never asserted: start in under a second,
and serve at least 2,000 simple requests per second on one core.

Run it alone with ``python -m benchmarks.bench_emulator [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

NAME: Final = "emulator"
TITLE: Final = "Emulator startup time and requests per second (raw aiohttp client)"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent

FULL: Final = {"calls": 5000, "reps": 3, "warmup": 500, "starts": 5}
QUICK: Final = {"calls": 600, "reps": 1, "warmup": 100, "starts": 2}
CONCURRENCY: Final = (1, 32)
GOAL_STARTUP_S: Final = 1.0
GOAL_RPS: Final = 2000.0


def _env() -> dict[str, str]:
    existing = os.environ.get("PYTHONPATH")
    path = str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}"
    return {**os.environ, "PYTHONPATH": path}


def _pin(pid: int, cores: set[int]) -> bool:
    if not hasattr(os, "sched_setaffinity") or not cores:
        return False
    try:
        os.sched_setaffinity(pid, cores)
    except OSError:
        return False
    return True


@contextmanager
def _emulator_process() -> Iterator[tuple[dict[str, Any], int, float]]:
    """The emulator in a subprocess: (first line, pid, seconds from spawn to first line)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_async.emulator", "--rate-limit", "off", "--quiet"],
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
        env=_env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        if not line:
            raise RuntimeError(f"the emulator exited with {proc.wait()} before its first line")
        yield json.loads(line), proc.pid, elapsed
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _import_seconds() -> float:
    code = (
        "import time; t = time.perf_counter(); import codegen_async.emulator; "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


async def _in_process_start() -> float:
    from codegen_async.emulator import Emulator

    started = time.perf_counter()
    emulator = Emulator()
    await emulator.start()
    elapsed = time.perf_counter() - started
    await emulator.stop()
    return elapsed


def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


async def _throughput(
    info: dict[str, Any], pid: int, calls: int, warmup: int, reps: int
) -> dict[tuple[str, int], list[tuple[float, float | None]]]:
    """(operation, concurrency) -> [(client req/s, server CPU seconds per request)]."""
    import aiohttp

    try:
        import psutil

        server: Any = psutil.Process(pid)
    except ImportError:  # pragma: no cover - psutil is in the bench extra
        server = None
    base, org = info["base_url"], info["org_id"]
    headers = {"Authorization": f"Bearer {info['token']}"}
    samples: dict[tuple[str, int], list[tuple[float, float | None]]] = {}
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        async with session.post(f"/v1/organizations/{org}/agent/run", json={"prompt": "x"}) as r:
            run_id = (await r.json())["id"]
        paths = {
            "get_run": f"/v1/organizations/{org}/agent/run/{run_id}",
            "get_users": f"/v1/organizations/{org}/users",
        }

        async def worker(path: str, n: int) -> None:
            for _ in range(n):
                async with session.get(path) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET {path}: {resp.status}")

        for _ in range(reps):
            for operation, path in paths.items():
                for concurrency in CONCURRENCY:
                    await asyncio.gather(
                        *(worker(path, n) for n in _shares(max(warmup, concurrency), concurrency))
                    )
                    cpu_before = sum(server.cpu_times()[:2]) if server else 0.0
                    started = time.perf_counter()
                    await asyncio.gather(*(worker(path, n) for n in _shares(calls, concurrency)))
                    elapsed = time.perf_counter() - started
                    cpu = (sum(server.cpu_times()[:2]) - cpu_before) / calls if server else None
                    samples.setdefault((operation, concurrency), []).append((calls / elapsed, cpu))
    return samples


def run(quick: bool = False) -> dict[str, Any]:
    """Measure startup and throughput; rows of medians."""
    settings = QUICK if quick else FULL
    calls, reps, warmup, starts = (
        settings["calls"],
        settings["reps"],
        settings["warmup"],
        settings["starts"],
    )
    import_s = statistics.median(_import_seconds() for _ in range(starts))
    in_process = statistics.median(asyncio.run(_in_process_start()) for _ in range(starts))
    spawn: list[float] = []
    for _ in range(starts):
        with _emulator_process() as (_, _, elapsed):
            spawn.append(elapsed)
    first_line = statistics.median(spawn)

    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    with _emulator_process() as (info, pid, _):
        pinned = len(cores) >= 2 and _pin(pid, {cores[0]}) and _pin(0, set(cores[1:]))
        samples = asyncio.run(_throughput(info, pid, calls, warmup, reps))
    if pinned:
        _pin(0, set(cores))

    rows: list[dict[str, Any]] = [
        {"measure": "startup: import codegen_async.emulator", "ms": round(import_s * 1e3, 1)},
        {
            "measure": "startup: Emulator() + start(), warm process",
            "ms": round(in_process * 1e3, 2),
        },
        {"measure": "startup: spawn to first line (CLI)", "ms": round(first_line * 1e3, 1)},
    ]
    worst_capacity = float("inf")
    for (operation, concurrency), values in sorted(samples.items()):
        rps = statistics.median(v[0] for v in values)
        cpu_values = [v[1] for v in values if v[1]]
        cpu = statistics.median(cpu_values) if cpu_values else None
        capacity = 1.0 / cpu if cpu else None
        if capacity is not None:
            worst_capacity = min(worst_capacity, capacity)
        rows.append(
            {
                "measure": operation,
                "concurrency": concurrency,
                "req/s": round(rps),
                "server CPU µs/req": None if cpu is None else round(cpu * 1e6, 1),
                "req/s per server core": None if capacity is None else round(capacity),
            }
        )
    startup_ok = max(in_process, first_line) < GOAL_STARTUP_S
    best_rps = max(statistics.median(v[0] for v in values) for values in samples.values())
    notes = [
        f"{calls:,} calls per mode after {warmup} warm-up calls, median of {reps} "
        f"repetition(s); startup: median of {starts}.",
        "The emulator runs in its own process with --rate-limit off; "
        + (
            f"it is pinned to core {cores[0]} and the client to cores {cores[1:]}."
            if pinned
            else "it could not be pinned to one core here."
        ),
        "'req/s per server core' is requests per CPU-second of the emulator process "
        "(user + system time), i.e. what one core sustains when the client is not the limit.",
        f"Goal: start in under {GOAL_STARTUP_S:g} s -> "
        f"{'met' if startup_ok else 'NOT met'} ({max(in_process, first_line) * 1e3:.0f} ms "
        "worst of in-process start and spawn to first line).",
        f"Goal: >= {GOAL_RPS:,.0f} simple requests/s on one core -> "
        + (
            f"{'met' if worst_capacity >= GOAL_RPS else 'NOT met'} "
            f"(lowest capacity {worst_capacity:,.0f} req/s per core; best client-side rate "
            f"{best_rps:,.0f} req/s)."
            if worst_capacity != float("inf")
            else f"best client-side rate {best_rps:,.0f} req/s (no CPU figures without psutil)."
        ),
    ]
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "measure",
                "y": "req/s",
                "series": "concurrency",
                "title": "Emulator requests per second (raw aiohttp client)",
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--quick", action="store_true", help="a few seconds, fewer calls")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    for row in result["rows"]:
        print(json.dumps(row, ensure_ascii=False))
    for note in result["notes"]:
        print("-", note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
