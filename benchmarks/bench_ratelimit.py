"""Client-side rate limiters side by side: 429s, quota used, and the first calls' latency.

A greedy caller offers 11 x N calls of ``analyze_sandbox_logs`` at once (N = 5 per window,
the documented quota of log analysis and setup commands) to the time-scaled emulator, in
its own process, through each of:

* **codegen_async window**: the SDK's default limiter (sliding-window log; a slot comes back
  one window after the answer to the request that used it);
* **codegen_async smooth**: the SDK's smooth mode (its own even pace, one call every
  (T + margin) / N, with the window log as a safety net);
* **aiolimiter(N, T)**: ``AsyncLimiter(5, T)`` around each call, as most people first
  write it (a leaky bucket: N at once, then one every T/N, so up to 2N - 1 in a window);
* **aiolimiter(1, T/N)**: ``AsyncLimiter(1, T / 5)`` around each call: never above the
  quota on paper, but no burst.

The aiolimiter rows use the same client with its own limiting off
(``RateLimits.disabled()``). No client retries (``max_retries=0``), so every 429 the emulator
sends is counted once and is a lost call. Each server mode (``fixed`` windows that open at
the first request, and a ``sliding`` log) gets its own emulator process; before each run
its quotas and counters are reset, and the SDK's process-wide limiters are forgotten.

Columns: **429s** the emulator sent; **quota used**, the calls answered 200 within exactly
ten windows from the first call, divided by the 10 x N the quota allows in that time;
**first-N latency**, from the start to the answer of each of the first N calls offered
(their maximum and median, in milliseconds and in windows). Medians of the repetitions; the
limiters are interleaved within each repetition, so that drift on a shared machine hits
them all alike.

Run it alone with ``python -m benchmarks.bench_ratelimit [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from aiolimiter import AsyncLimiter

from benchmarks._servers import REPO_ROOT, stop_process
from codegen_async import AsyncAgent, RateLimitError, RateLimits
from codegen_async._endpoints import ENDPOINTS
from codegen_async._ratelimit import REGISTRY

__all__ = ["main", "run"]

NAME: Final = "ratelimit"
TITLE: Final = "Rate limiters on a 5-per-window route: 429s, quota used, first-N latency"

OPERATION: Final = "analyze_sandbox_logs"
N: Final = ENDPOINTS[OPERATION].quota.limit
WINDOW: Final = ENDPOINTS[OPERATION].quota.window  # seconds, before scaling
WINDOWS: Final = 10
OFFERED: Final = (WINDOWS + 1) * N  # more than any limiter can get through in 10 windows
SERVERS: Final = ("fixed", "sliding")
LIMITERS: Final = (
    "codegen_async window",
    "codegen_async smooth",
    f"aiolimiter({N}, T)",
    f"aiolimiter(1, T/{N})",
)

FULL: Final = {"time_scale": 0.005, "reps": 3}
QUICK: Final = {"time_scale": 0.001, "reps": 1}

GOAL_QUOTA: Final = 97.0  # percent, issue 4; checked in the notes, never asserted


# --- the emulator, in its own process -----------------------------------------------------


@contextmanager
def emulator(server: str, time_scale: float) -> Iterator[dict[str, Any]]:
    """``python -m codegen_async.emulator`` in a child process; yields its first line."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codegen_async.emulator",
            "--time-scale",
            repr(time_scale),
            "--rate-limit",
            server,
            "--quiet",
        ],
        cwd=REPO_ROOT,
        env=env,
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


def _admin(info: dict[str, Any], path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(info["base_url"] + path, method=method, data=None)
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


# --- one measurement ----------------------------------------------------------------------


def _client(info: dict[str, Any], limiter: str, time_scale: float) -> AsyncAgent:
    if limiter.startswith("codegen_async"):
        mode = "smooth" if limiter.endswith("smooth") else "window"
        limits = RateLimits.documented(time_scale, mode=mode)  # type: ignore[arg-type]
    else:
        limits = RateLimits.disabled()
    return AsyncAgent(
        info["token"], info["org_id"], base_url=info["base_url"], rate_limits=limits, max_retries=0
    )


def _outside(limiter: str, window: float) -> Callable[[], Any] | None:
    """A fresh aiolimiter for the aiolimiter rows (built inside the measuring loop)."""
    if limiter == f"aiolimiter({N}, T)":
        return lambda: AsyncLimiter(N, window)
    if limiter == f"aiolimiter(1, T/{N})":
        return lambda: AsyncLimiter(1, window / N)
    return None


async def _greedy(info: dict[str, Any], limiter: str, time_scale: float) -> dict[str, Any]:
    window = WINDOW * time_scale
    make_outside = _outside(limiter, window)
    async with _client(info, limiter, time_scale) as agent:
        await agent.get_current_user()  # warm-up: one connection open, code paths loaded
        outside = make_outside() if make_outside is not None else None
        answers: list[tuple[int, float, bool]] = []
        start = time.perf_counter()

        async def one(i: int) -> None:
            if outside is not None:
                await outside.acquire()
            try:
                await agent.analyze_sandbox_logs(1)
                ok = True
            except RateLimitError:
                ok = False
            answers.append((i, time.perf_counter() - start, ok))

        tasks = [asyncio.create_task(one(i)) for i in range(OFFERED)]
        await asyncio.wait(tasks, timeout=WINDOWS * window)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    span = WINDOWS * window
    within = [a for a in answers if a[1] <= span]
    first = sorted(t for i, t, _ in answers if i < N)
    first += [span] * (N - len(first))  # a first call not answered in time: count the span
    return {
        "ok": sum(ok for _, _, ok in within),
        "first_max": max(first),
        "first_median": statistics.median(first),
    }


def _measure(info: dict[str, Any], limiter: str, time_scale: float) -> dict[str, Any]:
    REGISTRY.clear()
    _admin(info, "/_emulator/reset-rate-limits", "POST")
    _admin(info, "/_emulator/reset-stats", "POST")
    result = asyncio.run(_greedy(info, limiter, time_scale))
    stats = _admin(info, "/_emulator/stats")
    result["429s"] = int(stats["rate_limited"])
    return result


def run(quick: bool = False) -> dict[str, Any]:
    """Measure every limiter against both server modes; return the report dictionary."""
    settings = QUICK if quick else FULL
    time_scale = float(settings["time_scale"])
    reps = int(settings["reps"])
    window = WINDOW * time_scale
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for server in SERVERS:
        with emulator(server, time_scale) as info:
            _measure(info, LIMITERS[0], time_scale)  # warm-up run, not counted
            for rep in range(reps):
                order = LIMITERS[rep % len(LIMITERS) :] + LIMITERS[: rep % len(LIMITERS)]
                for limiter in order:
                    samples.setdefault((server, limiter), []).append(
                        _measure(info, limiter, time_scale)
                    )

    rows = []
    for (server, limiter), runs in samples.items():
        quota = statistics.median(100.0 * r["ok"] / (WINDOWS * N) for r in runs)
        first_max = statistics.median(r["first_max"] for r in runs)
        first_median = statistics.median(r["first_median"] for r in runs)
        rows.append(
            {
                "server": server,
                "limiter": limiter,
                "429s": statistics.median(r["429s"] for r in runs),
                "429s (max)": max(r["429s"] for r in runs),
                "quota used %": round(quota, 1),
                f"first {N} max ms": round(first_max * 1e3, 1),
                f"first {N} median ms": round(first_median * 1e3, 1),
                f"first {N} max (windows)": round(first_max / window, 3),
            }
        )

    ours = [r for r in rows if r["limiter"] == "codegen_async window"]
    met = all(r["429s (max)"] == 0 and r["quota used %"] >= GOAL_QUOTA for r in ours)
    ours_text = ", ".join(
        f"{r['server']}: {r['429s (max)']} 429s, {r['quota used %']} %" for r in ours
    )
    notes = [
        f"Route {OPERATION} (quota {N} per {WINDOW:g} s), emulator time_scale {time_scale:g}: "
        f"one window T = {window * 1e3:g} ms. {OFFERED} calls offered at once; quota used = "
        f"calls answered 200 within {WINDOWS} windows / {WINDOWS * N}.",
        f"Median of {reps} repetition(s) after a warm-up run; 429s (max) is the worst "
        "repetition. No client retries: a 429 is a lost call.",
        f"Goal (issue 4): 0 429s and at least {GOAL_QUOTA:g} % of the quota for the SDK's "
        f"default limiter: {'met' if met else 'NOT met'} ({ours_text}).",
        "Loopback latency is not scaled with the windows, so it weighs a little more here "
        "than against the real API (where a window is 60 s).",
    ]
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "limiter",
                "y": "quota used %",
                "series": "server",
                "title": "Quota used in 10 windows (%)",
            },
            {
                "kind": "bar",
                "x": "limiter",
                "y": "429s",
                "series": "server",
                "title": "429 responses received",
            },
            {
                "kind": "bar",
                "x": "limiter",
                "y": f"first {N} max (windows)",
                "series": "server",
                "title": f"Latency of the first {N} calls (windows)",
            },
        ],
    }


def _print(result: dict[str, Any]) -> None:
    rows = result["rows"]
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print(result["title"])
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    for note in result["notes"]:
        print("-", note)


def main(argv: list[str] | None = None) -> None:
    """Run the scenario and print its rows."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_ratelimit")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args(argv)
    _print(run(quick=args.quick))


if __name__ == "__main__":
    main()
