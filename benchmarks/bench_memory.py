"""Memory held by concurrent ``wait_for_run`` calls: bytes per waiting run.

An emulator (in its own process, time scale 0.01, no server-side quotas) is given 10,000
agent runs that stay unfinished for ten minutes. This process then starts one
``AsyncAgent.wait_for_run`` task per run on one client (client-side quotas scaled like the
emulator's) and lets them poll for a few seconds:

1. **RSS**: resident set size before the waits (after a warm-up wait on a finished run and a
   garbage collection) and its peak while they poll, sampled every 50 ms; growth divided by
   the number of waits is the cost of one waiting run as the operating system sees it.
2. **Python heap**: the same with ``tracemalloc`` started just before the waits (a second
   round, so that its own bookkeeping does not inflate the RSS figure): bytes allocated by
   the waits and still alive at the end of the window.

Every wait is then cancelled; the RSS afterwards shows whether the memory came back.

Run it alone with ``python -m benchmarks.bench_memory [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
import tracemalloc
from typing import Any, Final

from benchmarks import NotAvailable
from benchmarks._servers import EmulatorInfo, serve_emulator

NAME: Final = "memory"
TITLE: Final = "Memory per concurrent wait_for_run (time-scaled emulator)"

TIME_SCALE: Final = 0.01
RUN_SECONDS: Final = 600.0  # real seconds the runs stay unfinished: longer than any window
FULL: Final = {"runs": 10_000, "window": 5.0}
QUICK: Final = {"runs": 500, "window": 1.5}
GOAL_BYTES: Final = 5 * 1024


def _check_available() -> None:
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise NotAvailable("psutil is not installed (pip install 'codegen-async[bench]')") from None
    try:
        from codegen_async.emulator import Emulator  # noqa: F401
    except ImportError as exc:
        raise NotAvailable(f"codegen_async.emulator.Emulator cannot be imported ({exc})") from None
    from codegen_async import AsyncAgent

    if not callable(getattr(AsyncAgent, "wait_for_run", None)):
        raise NotAvailable("AsyncAgent.wait_for_run does not exist yet")


async def _emulator_requests(session: Any, base_url: str) -> dict[str, int]:
    """Requests the emulator has answered so far, per route (its ``/_emulator/stats``)."""
    async with session.get(f"{base_url}/_emulator/stats") as resp:
        stats = await resp.json()
    requests = stats.get("requests", {})
    return {str(k): int(v) for k, v in requests.items()} if isinstance(requests, dict) else {}


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


async def _round(agent: Any, emu: EmulatorInfo, window: float, *, traced: bool) -> dict[str, Any]:
    """Start one wait per run, watch for ``window`` seconds, cancel them; what it cost."""
    import psutil

    process = psutil.Process()
    gc.collect()
    await asyncio.sleep(0.05)
    rss_before = process.memory_info().rss
    if traced:
        tracemalloc.start()
    tasks = [asyncio.create_task(agent.wait_for_run(run_id)) for run_id in emu.run_ids]
    # The window starts once every wait has run its first step (subscribed to the poller).
    await asyncio.sleep(0)
    peak = max(rss_before, process.memory_info().rss)
    deadline = time.perf_counter() + window
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
        peak = max(peak, process.memory_info().rss)
    finished = [t for t in tasks if t.done()]
    heap_now = tracemalloc.get_traced_memory()[0] if traced else 0
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    if finished:
        first = outcomes[tasks.index(finished[0])]
        raise RuntimeError(
            f"{len(finished)} of {len(tasks)} waits ended during the window although their "
            f"runs were unfinished (first: {first!r})"
        )
    del tasks, outcomes, finished
    gc.collect()
    await asyncio.sleep(0.2)  # let the poller notice that nobody waits any more
    gc.collect()
    result = {
        "rss_before": rss_before,
        "rss_peak": peak,
        "rss_after_cancel": process.memory_info().rss,
    }
    if traced:
        result["heap"] = heap_now
        result["heap_after_cancel"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return result


async def _measure(emu: EmulatorInfo, window: float) -> dict[str, Any]:
    import aiohttp

    from codegen_async import AsyncAgent, RateLimits

    agent = AsyncAgent(
        emu.token,
        emu.org_id,
        base_url=emu.base_url,
        rate_limits=RateLimits.documented(scale=emu.time_scale),
    )
    async with agent, aiohttp.ClientSession() as stats_session:
        # Warm-up: session, connections, poller, converter hooks, lazy imports.
        await agent.wait_for_run(emu.finished_run_id, timeout=60)
        await agent.wait_for_runs([emu.finished_run_id], timeout=60)
        before = await _emulator_requests(stats_session, emu.base_url)
        rss = await _round(agent, emu, window, traced=False)
        polled = _diff(await _emulator_requests(stats_session, emu.base_url), before)
        heap = await _round(agent, emu, window, traced=True)
    return {"rss": rss, "heap": heap, "requests": polled}


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the memory of concurrent waits; rows per measure with bytes per waiting run."""
    _check_available()
    settings = QUICK if quick else FULL
    runs, window = int(settings["runs"]), float(settings["window"])
    with serve_emulator(runs, time_scale=TIME_SCALE, run_seconds=RUN_SECONDS) as emu:
        measured = asyncio.run(_measure(emu, window))
    rss, heap = measured["rss"], measured["heap"]

    def row(measure: str, total: int, note: str) -> dict[str, Any]:
        per_run = total / runs
        return {
            "measure": measure,
            "waiting runs": runs,
            "total MB": round(total / 2**20, 2),
            "bytes per run": round(per_run),
            "goal": "< 5 KB",
            "verdict": "met" if per_run < GOAL_BYTES else "MISSED",
            "how": note,
        }

    rows = [
        row(
            "RSS growth",
            rss["rss_peak"] - rss["rss_before"],
            "peak RSS while waiting minus RSS before",
        ),
        row(
            "Python heap",
            heap["heap"],
            "tracemalloc: bytes allocated by the waits, alive at the end of the window",
        ),
    ]
    left = {
        "RSS left after cancelling": (
            rss["rss_after_cancel"] - rss["rss_before"],
            "RSS after cancelling every wait and a garbage collection, minus before",
        ),
        "Python heap left after cancelling": (
            heap["heap_after_cancel"],
            "tracemalloc: bytes the waits allocated that are still alive after cancelling",
        ),
    }
    for measure, (total, how) in left.items():
        rows.append(
            {
                "measure": measure,
                "waiting runs": 0,
                "total MB": round(total / 2**20, 2),
                "bytes per run": None,
                "goal": None,
                "verdict": None,
                "how": how,
            }
        )
    requests = measured["requests"]
    notes = [
        f"{runs:,} runs, unfinished for the whole {window:.1f} s window; emulator time scale "
        f"{TIME_SCALE}, client quotas RateLimits.documented(scale={TIME_SCALE}); RSS before "
        f"the waits: {rss['rss_before'] / 2**20:.1f} MB.",
        "Requests the emulator answered during the RSS window: "
        + (", ".join(f"{k}: {v:,}" for k, v in sorted(requests.items())) or "none")
        + ".",
        "RSS counts whole pages the allocator keeps, and freed memory is not always returned "
        "to the operating system: 'RSS left' is an upper bound of what stays, 'Python heap "
        "left' what is really still referenced.",
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
                "y": "bytes per run",
                "series": None,
                "title": f"Bytes per waiting run, {runs:,} concurrent waits (goal < 5 KB)",
            }
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Print the rows and notes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    try:
        result = run(quick=args.quick)
    except NotAvailable as exc:
        print(f"not available: {exc}")
        return
    for row in result["rows"]:
        print(json.dumps(row))
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
