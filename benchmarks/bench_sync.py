"""What the blocking wrapper costs: ``codegen_sync.Agent`` against ``AsyncAgent`` on ``get_run``.

Two measurements:

- **The bare portal hop**: a blocking call of a coroutine that returns at once, through
  ``codegen_sync``'s portal (run in the calling thread, and handed to its loop thread),
  ``asyncio.run_coroutine_threadsafe`` + ``concurrent.futures``, and ``anyio``'s
  ``BlockingPortal.call`` (microseconds per call).
- **get_run, sequentially**, against the emulator in its own process (server-side and
  client-side rate limiting off): ``AsyncAgent`` awaited in ``asyncio.run``, the same calls
  through ``codegen_sync.Agent``, and the official generated client (``codegen-api-client``,
  urllib3) for reference. When ``benchmarks._servers`` is there, the same three clients also
  ask its minimal server (one fixed answer; the issue's reference figures came from one).

Clients are interleaved within each repetition so drift on a shared machine hits them alike;
each figure is the median over repetitions, after a warm-up. Goals (issue 5, reported in the
notes, never asserted): a blocking call at most 1.3x the async one, and sequential blocking
throughput at least the official client's.

Run it alone with ``python -m benchmarks.bench_sync [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

NAME: Final = "sync"
TITLE: Final = "Cost of the blocking wrapper (get_run, sequential, loopback)"
REPO_ROOT: Final = Path(__file__).resolve().parent.parent

FULL: Final = {"calls": 2000, "hops": 20000, "reps": 5, "warmup": 200}
QUICK: Final = {"calls": 200, "hops": 2000, "reps": 1, "warmup": 50}
GOAL_RATIO: Final = 1.3

ASYNC: Final = "AsyncAgent (await)"
SYNC: Final = "codegen_sync.Agent"
OFFICIAL: Final = "codegen-api-client"


# --- servers ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _server(args: list[str], timeout: float = 60.0) -> Iterator[dict[str, Any]]:
    """Start a server subprocess whose first stdout line is JSON; yield it; stop it."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"{' '.join(args)} did not start (exit code {proc.poll()})")
        yield json.loads(line)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@contextlib.contextmanager
def _emulator() -> Iterator[dict[str, Any]]:
    """The emulator with its quotas off, and one finished run to ask for."""
    args = ["-m", "codegen_async.emulator", "--rate-limit", "off", "--quiet"]
    with _server(args) as info:
        from codegen_sync import Agent, RateLimits

        with Agent(
            info["token"],
            info["org_id"],
            base_url=info["base_url"],
            rate_limits=RateLimits.disabled(),
        ) as agent:
            info["agent_run_id"] = agent.run("Benchmark run").id
        yield info


@contextlib.contextmanager
def _minimal() -> Iterator[dict[str, Any]]:
    with _server(["-m", "benchmarks._servers"]) as info:
        yield info


# --- the clients: each returns (call, close) --------------------------------------------------
def _time_async(info: dict[str, Any], calls: int, warmup: int) -> tuple[float, float]:
    from codegen_async import AsyncAgent, RateLimits

    async def main() -> tuple[float, float]:
        async with AsyncAgent(
            info["token"],
            info["org_id"],
            base_url=info["base_url"],
            rate_limits=RateLimits.disabled(),
        ) as agent:
            run_id = info["agent_run_id"]
            for _ in range(warmup):
                await agent.get_run(run_id)
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                await agent.get_run(run_id)
            return time.perf_counter() - started, time.process_time() - cpu

    return asyncio.run(main())


def _time_sync(info: dict[str, Any], calls: int, warmup: int) -> tuple[float, float]:
    from codegen_sync import Agent, RateLimits

    with Agent(
        info["token"],
        info["org_id"],
        base_url=info["base_url"],
        rate_limits=RateLimits.disabled(),
    ) as agent:
        get_run, run_id = agent.get_run, info["agent_run_id"]
        for _ in range(warmup):
            get_run(run_id)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            get_run(run_id)
        return time.perf_counter() - started, time.process_time() - cpu


def _time_official(info: dict[str, Any], calls: int, warmup: int) -> tuple[float, float]:
    from codegen_api_client.api.agents_api import AgentsApi
    from codegen_api_client.api_client import ApiClient
    from codegen_api_client.configuration import Configuration

    client = ApiClient(
        Configuration(host=info["base_url"]),
        header_name="Authorization",
        header_value=f"Bearer {info['token']}",
    )
    try:
        get = AgentsApi(client).get_agent_run_v1_organizations_org_id_agent_run_agent_run_id_get
        org_id, run_id = info["org_id"], info["agent_run_id"]
        for _ in range(warmup):
            get(agent_run_id=run_id, org_id=org_id)
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            get(agent_run_id=run_id, org_id=org_id)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        client.rest_client.pool_manager.clear()


CLIENTS: Final[dict[str, Callable[[dict[str, Any], int, int], tuple[float, float]]]] = {
    ASYNC: _time_async,
    SYNC: _time_sync,
    OFFICIAL: _time_official,
}


# --- the bare hop ----------------------------------------------------------------------------
async def _nothing() -> int:
    return 1


def _hop_codegen_sync(hops: int) -> tuple[float, float]:
    """The loop is idle: each call runs it in this thread (no hop at all)."""
    from codegen_sync._portal import get_portal

    portal = get_portal()
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(hops):
        portal.call(_nothing())
    return time.perf_counter() - started, time.process_time() - cpu


def _hop_codegen_sync_loop_thread(hops: int) -> tuple[float, float]:
    """Calls from a thread that runs an event loop of its own (a notebook's): each one is
    handed to the portal's loop thread."""
    from codegen_sync._portal import get_portal

    portal = get_portal()

    async def main() -> tuple[float, float]:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(hops):
            portal.call(_nothing())
        return time.perf_counter() - started, time.process_time() - cpu

    return asyncio.run(main())


def _hop_threadsafe(hops: int) -> tuple[float, float]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(hops):
            asyncio.run_coroutine_threadsafe(_nothing(), loop).result()
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _hop_anyio(hops: int) -> tuple[float, float]:
    from anyio.from_thread import start_blocking_portal

    with start_blocking_portal() as portal:
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(hops):
            portal.call(_nothing)
        return time.perf_counter() - started, time.process_time() - cpu


HOPS: Final[dict[str, Callable[[int], tuple[float, float]]]] = {
    "codegen_sync portal, calling thread": _hop_codegen_sync,
    "codegen_sync portal, loop thread": _hop_codegen_sync_loop_thread,
    "run_coroutine_threadsafe + Future": _hop_threadsafe,
    "anyio BlockingPortal.call": _hop_anyio,
}


# --- the scenario ----------------------------------------------------------------------------
def _measure_server(
    server: str, info: dict[str, Any], settings: dict[str, int], rows: list[dict[str, Any]]
) -> None:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    calls = settings["calls"]
    for _ in range(settings["reps"]):
        for name, timer in CLIENTS.items():
            wall, cpu = timer(info, calls, settings["warmup"])
            samples[name].append((wall / calls * 1e6, cpu / calls * 1e6))
    base = statistics.median(w for w, _ in samples[ASYNC])
    for name, values in samples.items():
        rows.append(_row("get_run", server, name, values, base))


def _row(
    measure: str,
    server: str,
    client: str,
    values: list[tuple[float, float]],
    base: float | None,
) -> dict[str, Any]:
    walls = [w for w, _ in values]
    us = statistics.median(walls)
    return {
        "measure": measure,
        "server": server,
        "client": client,
        "us per call": round(us, 1),
        "CPU us per call": round(statistics.median(c for _, c in values), 1),
        "calls/s": round(1e6 / us),
        "vs AsyncAgent": None if base is None else round(us / base, 3),
        "spread": f"{(max(walls) - min(walls)) / us:.0%}",
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure the hop and the three clients; rows of medians (see the module docstring)."""
    settings = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    notes: list[str] = []

    hop_samples: dict[str, list[tuple[float, float]]] = {name: [] for name in HOPS}
    hops = settings["hops"]
    for hop in HOPS.values():
        hop(hops // 10)  # warm-up
    for _ in range(settings["reps"]):
        for name, hop in HOPS.items():
            wall, cpu = hop(hops)
            hop_samples[name].append((wall / hops * 1e6, cpu / hops * 1e6))
    for name, values in hop_samples.items():
        rows.append(_row("bare hop", "-", name, values, None))

    with _emulator() as info:
        _measure_server("emulator", info, settings, rows)
    try:
        import benchmarks._servers  # noqa: F401 - another scenario's minimal server
    except ImportError:
        notes.append("benchmarks._servers is missing: no minimal-server rows")
    else:
        if not quick:
            with _minimal() as info:
                _measure_server("minimal", info, settings, rows)

    for server in ("emulator", "minimal"):
        by_client = {r["client"]: r for r in rows if r["server"] == server}
        if not by_client:
            continue
        ratio = by_client[SYNC]["vs AsyncAgent"]
        sync_rps, official_rps = by_client[SYNC]["calls/s"], by_client[OFFICIAL]["calls/s"]
        notes.append(
            f"{server}: a blocking call costs {ratio:.2f}x the awaited one "
            f"(+{by_client[SYNC]['us per call'] - by_client[ASYNC]['us per call']:.0f} us; "
            f"goal <= {GOAL_RATIO}x: {'met' if ratio <= GOAL_RATIO else 'NOT met'}); "
            f"sequential blocking throughput {sync_rps:,} calls/s vs the official client's "
            f"{official_rps:,} (goal >=: {'met' if sync_rps >= official_rps else 'NOT met'})."
        )
    notes.insert(
        0,
        f"{settings['calls']:,} sequential get_run calls per client after {settings['warmup']} "
        f"warm-up calls, {settings['hops']:,} bare hops; median of {settings['reps']} "
        "repetition(s), clients interleaved. The servers run in their own processes; "
        "rate limiting is off on both sides. CPU: this process's CPU time (all its threads, "
        "the loop thread included). Spread: (max - min) / median of the wall times.",
    )
    notes.append(
        "codegen_sync runs the shared loop in the calling thread when the loop is idle (the "
        "sequential get_run rows, and 'calling thread'): no thread hop, only the loop's own "
        "start and stop. From a thread that runs an event loop of its own (a notebook), or "
        "while the loop is busy, a call is handed to the loop thread ('loop thread': "
        "call_soon_threadsafe and a bare lock, eager task start on Python 3.12+), which costs "
        "two thread wake-ups, dear on a VM; still less than run_coroutine_threadsafe's and "
        "anyio's hops. The CPU column is the steadier measure on a busy machine."
    )
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "client",
                "y": "us per call",
                "series": "server",
                "title": "Microseconds per sequential call (lower is better)",
            }
        ],
    }


def main(argv: list[str] | None = None) -> None:
    """Print the rows and notes."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sync")
    parser.add_argument("--quick", action="store_true", help="a few seconds, one repetition")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    for row in result["rows"]:
        print(json.dumps(row))
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
