"""Fan-out: waiting on N agent runs that finish at random times.

Three ways of waiting on the same N runs, side by side, on the time-scaled emulator:

* **doc loop, no limiter**: the documentation's loop (``get_run``, then ``sleep(5)``) run
  for every run at once with ``asyncio.gather``, client-side rate limiting off
  (``RateLimits.disabled()``, the default 2 retries);
* **doc loop + limiter**: the same loop through the SDK's rate limiter;
* **scheduler**: ``AsyncAgent.as_completed(ids)``: one poller for all runs, list pages of
  100 runs, ``get_run`` where cheaper, at most half of each route's quota, each run polled
  at least every 5 s (its backoff ceiling, the documentation's interval);
* **scheduler, poll_interval=0.5**: the same asked to poll every 0.5 s, so that the quota,
  not the ceiling, bounds it at every N.

For each: the **detection latency** of every run (when the client learned that the run was
finished, minus when the emulator finished it; the emulator reports the latter at
``GET /_emulator/runs/{id}``), the requests spent on the run routes, the 429s the emulator
sent, and the client's wall and CPU time. Every measurement gets a fresh emulator in its own
process (fresh quotas; its CPU is not the client's), seeded with N runs created at once whose
durations and outcomes come from the seed, the same seed for the three ways within a
repetition. The emulator runs at ``time_scale=0.01``: quota windows, run durations and the
loop's 5 s are a hundredth of the real ones, so latencies are also shown at real scale
(divided by 0.01; only approximately real, since network and CPU time are not scaled).

The lower bound the quota allows: one full sweep of the N pending runs, a list page per 100
runs, at the full standard rate (60 requests per 30 s).

Run it alone with ``python -m benchmarks.bench_fanout [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Final

import aiohttp

from benchmarks._procs import exit_with_parent
from benchmarks._servers import REPO_ROOT, stop_process
from codegen_async import ENDPOINTS
from codegen_async._polling import full_sweep_seconds

NAME: Final = "fanout"
TITLE: Final = "Waiting on N agent runs: detection latency, requests and 429s"

TIME_SCALE: Final = 0.01
DOC_SLEEP: Final = 5.0  # the documentation's time.sleep(5)

STRATEGIES: Final = (
    "doc loop, no limiter",
    "doc loop + limiter",
    "scheduler",
    "scheduler, poll_interval=0.5",
)
FAST_POLL: Final = 0.5  # seconds, real scale

FULL: Final = {"sizes": (100, 1000), "reps": 3, "warmup": 20, "duration": (5.0, 300.0)}
QUICK: Final = {"sizes": (100,), "reps": 1, "warmup": 0, "duration": (5.0, 60.0)}
GOAL_SIZE: Final = 1000

GOAL_SPEEDUP: Final = 20.0  # scheduler p95 at least 20x lower than the limited doc loop's
POLL_ROUTES: Final = tuple(
    ENDPOINTS[op].route for op in ("get_run", "list_runs", "get_current_user")
)


# --- the emulator, in its own process ------------------------------------------------------


async def _serve(runs: int, seed: int, duration: tuple[float, float]) -> None:
    from codegen_async.emulator import Emulator

    async with Emulator(
        time_scale=TIME_SCALE, seed=seed, run_duration=duration, rate_limit="fixed"
    ) as emu:
        now = time.time()
        ids = [
            emu.state.create_run(
                org_id=emu.org_id,
                user_id=emu.user_id,
                kind="run",
                operation="run",
                source_type="API",
                prompt=f"ticket {i}",
                now=now,
            ).id
            for i in range(runs)
        ]
        emu.reset_stats()
        info = {"base_url": emu.base_url, "token": emu.token, "org_id": emu.org_id, "ids": ids}
        print(json.dumps(info), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()


@contextlib.contextmanager
def emulator(runs: int, seed: int, duration: tuple[float, float]) -> Iterator[dict[str, Any]]:
    """An emulator process holding ``runs`` fresh runs; yields its address, token and ids."""
    existing = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_fanout",
            "--serve",
            f"--runs={runs}",
            f"--seed={seed}",
            f"--duration={duration[0]},{duration[1]}",
            "--exit-with-stdin",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,  # never written to: its lifeline (benchmarks._procs)
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"the emulator did not start (exit code {proc.poll()})")
        yield json.loads(line)
    finally:
        stop_process(proc)


# --- the three ways of waiting ---------------------------------------------------------------


async def _doc_loop(agent: Any, run_id: int, detected: dict[int, float], errors: list[int]) -> None:
    """The documentation's loop, with the 429 it cannot avoid caught so that it goes on."""
    from codegen_async import RateLimitError

    while True:
        try:
            status = await agent.get_run(run_id)
        except RateLimitError:
            errors.append(run_id)
        else:
            if status.status in ["completed", "failed", "cancelled"]:
                detected[run_id] = time.time()
                return
        await asyncio.sleep(DOC_SLEEP * TIME_SCALE)


async def _measure(strategy: str, info: dict[str, Any]) -> dict[str, Any]:
    from codegen_async import AsyncAgent, RateLimits

    ids: list[int] = info["ids"]
    limits = (
        RateLimits.disabled()
        if strategy == "doc loop, no limiter"
        else RateLimits.documented(scale=TIME_SCALE)
    )
    detected: dict[int, float] = {}
    gave_up: list[int] = []
    cpu, wall = time.process_time(), time.perf_counter()
    async with AsyncAgent(
        info["token"], info["org_id"], base_url=info["base_url"], rate_limits=limits
    ) as agent:
        if strategy.startswith("scheduler"):
            fixed = FAST_POLL * TIME_SCALE if "poll_interval" in strategy else None
            async for run in agent.as_completed(ids, poll_interval=fixed):
                detected[run.id] = time.time()
        else:
            await asyncio.gather(*(_doc_loop(agent, i, detected, gave_up) for i in ids))
        sent = agent.stats.requests
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    async with aiohttp.ClientSession() as session:
        async with session.get(info["base_url"] + "/_emulator/stats") as resp:
            stats = await resp.json()
        finished = await asyncio.gather(*(_finished_at(session, info, i) for i in ids))
    latencies = sorted(detected[i] - done for i, done in zip(ids, finished, strict=True))
    return {
        "p50": _quantile(latencies, 0.50),
        "p95": _quantile(latencies, 0.95),
        "max": latencies[-1],
        "requests": sum(stats["requests"].get(route, 0) for route in POLL_ROUTES),
        "client_requests": sent,
        "429s": stats["rate_limited"],
        "loops_failed_429": len(gave_up),
        "wall": wall,
        "cpu": cpu,
        "early": sum(1 for x in latencies if x < 0),
    }


async def _finished_at(session: aiohttp.ClientSession, info: dict[str, Any], run_id: int) -> float:
    async with session.get(f"{info['base_url']}/_emulator/runs/{run_id}") as resp:
        body = await resp.json()
    return float(body["finished_at"])


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def measure(strategy: str, runs: int, seed: int, duration: tuple[float, float]) -> dict[str, Any]:
    """One measurement: a fresh emulator with ``runs`` runs, waited on one way."""
    with emulator(runs, seed, duration) as info:
        return asyncio.run(_measure(strategy, info))


def lower_bound(pending: int) -> float:
    """Seconds (real scale) of one sweep of ``pending`` runs at the full documented rate."""
    return full_sweep_seconds(pending, ENDPOINTS["list_runs"].quota)


# --- the scenario ----------------------------------------------------------------------------


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the three ways at each size; rows of medians over the repetitions."""
    settings = QUICK if quick else FULL
    duration: tuple[float, float] = settings["duration"]  # type: ignore[assignment]
    if settings["warmup"]:
        for strategy in STRATEGIES:
            measure(strategy, int(settings["warmup"]), 99, duration)  # type: ignore[call-overload]
    samples: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for rep in range(int(settings["reps"])):  # type: ignore[call-overload]
        for size in settings["sizes"]:  # type: ignore[attr-defined]
            for strategy in STRATEGIES:
                samples.setdefault((size, strategy), []).append(
                    measure(strategy, size, rep, duration)
                )
    rows: list[dict[str, Any]] = []
    for (size, strategy), runs in samples.items():

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(r[key] for r in runs))

        bound = lower_bound(size)
        rows.append(
            {
                "runs": size,
                "strategy": strategy,
                "p50 latency s": round(med("p50"), 3),
                "p95 latency s": round(med("p95"), 3),
                "max latency s": round(med("max"), 3),
                "p95 at real scale s": round(med("p95") / TIME_SCALE, 1),
                "requests": int(med("requests")),
                "429s": int(med("429s")),
                "wall s": round(med("wall"), 2),
                "client CPU s": round(med("cpu"), 2),
                "lower bound s (real)": bound,
                "p95 / lower bound": round(med("p95") / TIME_SCALE / bound, 2),
                "repetitions": len(runs),
            }
        )
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": _notes(rows, settings),
        "plots": [
            {
                "kind": "bar",
                "x": "strategy",
                "y": "p95 latency s",
                "series": "runs",
                "title": "p95 detection latency (emulator seconds, time_scale 0.01)",
            },
            {
                "kind": "bar",
                "x": "strategy",
                "y": "requests",
                "series": "runs",
                "title": "Requests spent on the run routes",
            },
        ],
    }


def _notes(rows: list[dict[str, Any]], settings: dict[str, Any]) -> list[str]:
    low, high = settings["duration"]
    notes = [
        f"Emulator at time_scale {TIME_SCALE} (fixed-window quotas, the standard one "
        f"{ENDPOINTS['get_run'].quota.scaled(TIME_SCALE)} per route); runs take "
        f"{low:g}-{high:g} s before scaling; "
        f"the doc loop sleeps {DOC_SLEEP:g} s, scaled. Medians of {settings['reps']} "
        f"repetition(s), each with a fresh emulator process; "
        f"{'no warm-up' if not settings['warmup'] else 'one warm-up per way'}.",
        "Latency: when the client yielded the run minus when the emulator finished it. "
        "Requests: GET get_run + list_runs + users/me answered by the emulator (429s "
        "included). Lower bound: one sweep of all N pending runs, a page of 100 per request, "
        f"at the full documented rate ({ENDPOINTS['list_runs'].quota}), at real scale.",
    ]
    by = {(r["runs"], r["strategy"]): r for r in rows}
    for size in settings["sizes"]:
        limited, sched = by.get((size, STRATEGIES[1])), by.get((size, STRATEGIES[2]))
        fast = by.get((size, STRATEGIES[3]))
        if limited is None or sched is None or fast is None:
            continue
        speedup = limited["p95 latency s"] / max(sched["p95 latency s"], 1e-9)
        verdict = ""
        if size == GOAL_SIZE:
            ok = sched["429s"] == 0 and speedup >= GOAL_SPEEDUP
            verdict = f"; goal >= {GOAL_SPEEDUP:g}x with 0 429s: {'met' if ok else 'MISSED'}"
        notes.append(
            f"N={size}: scheduler p95 {sched['p95 latency s']:.3f} s vs doc loop + limiter "
            f"{limited['p95 latency s']:.3f} s ({speedup:.0f}x lower{verdict}); "
            f"{sched['requests']} requests vs {limited['requests']}, {sched['429s']} 429s. "
            f"Lower bound {sched['lower bound s (real)']:g} s at real scale: scheduler p95 "
            f"is {sched['p95 / lower bound']:g}x it, {fast['p95 / lower bound']:g}x with "
            f"poll_interval={FAST_POLL:g} s."
        )
    notes.append(
        "Below about 500 runs the scheduler's p95 is its 5 s backoff ceiling (one poll per "
        "run every 5 s at most, the documentation's own interval, on a fraction of the "
        "quota); poll_interval= lowers it down to what the quota share allows. From about "
        "500 runs up, one sweep of the pending runs on half the list quota takes longer "
        "than 5 s, so the quota sets the pace: p95 about 2x the full-rate lower bound."
    )
    return notes


def main(argv: list[str] | None = None) -> None:
    """Print the rows (or, with ``--serve``, be the emulator process)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fanout")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--duration", default="5,300", help=argparse.SUPPRESS)
    parser.add_argument("--exit-with-stdin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.exit_with_stdin:
        exit_with_parent()
    if args.serve:
        low, high = (float(x) for x in args.duration.split(","))
        asyncio.run(_serve(args.runs, args.seed, (low, high)))
        return
    result = run(quick=args.quick)
    for row in result["rows"]:
        print(row)
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
