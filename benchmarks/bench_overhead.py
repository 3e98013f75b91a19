"""Per-call overhead of ``get_run``: the SDK against raw aiohttp, httpx and the official client.

Every client asks the same minimal loopback server (``benchmarks._servers``, in its own
process) for the same run, with client-side rate limiting off. Each client is measured in a
fresh subprocess of its own (so that one library's imports, garbage and threads cannot slow
another), once per repetition, with the clients interleaved so that drift on a shared machine
hits them all alike. Within that subprocess each mode gets a warm-up, then a fixed number of
calls timed for wall time (``time.perf_counter``) and process CPU time
(``time.process_time``: every thread of the client process, never the server's).

Async clients run at concurrency 1 (sequential) and 64 (64 tasks in one loop); blocking
clients run sequentially and on a pool of 16 threads. Ratios compare with raw aiohttp at
concurrency 1 (sequential rows) or 64 (concurrent rows).

Before measuring, every child frees one 1 MiB block. glibc serves blocks over its mmap
threshold (128 KiB in a fresh process) with their own ``mmap``, and raises that threshold the
first time such a block is freed. asyncio reads each socket into a fresh 256 KiB buffer, so a
process that has never freed a large block pays an ``mmap``/``mremap``/``munmap`` round trip
(about 12 µs here) on every read, and whether a client's process is in that state depended on
what its imports happened to allocate. Freeing one block puts every client in the state a
long-running process is in anyway.

To compare with another version of the SDK side by side (say 0.1.0 in a worktree), set
``CODEGEN_BENCH_BASELINE=/path/to/that/checkout``: its ``AsyncAgent`` and ``codegen_sync.Agent``
are measured in the same repetitions, as rows marked ``@ baseline``.

Run it alone with ``python -m benchmarks.bench_overhead [--quick] [--baseline PATH]``.
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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from benchmarks._servers import REPO_ROOT, ServerInfo, serve_get_run

NAME: Final = "overhead"
TITLE: Final = "Per-call overhead of get_run (loopback server, rate limiting off)"

ASYNC_CONCURRENCY: Final = 64
THREADS: Final = 16

# (client, kind): kind "async" runs at concurrency 1 and 64, "sync" sequentially and on threads.
CLIENTS: Final = (
    ("raw aiohttp", "async"),
    ("httpx.AsyncClient", "async"),
    ("AsyncAgent", "async"),
    ("codegen_sync.Agent", "sync"),
    ("codegen-api-client", "sync"),
)

FULL: Final = {"calls": 3000, "reps": 5, "warmup": 300}
QUICK: Final = {"calls": 300, "reps": 1, "warmup": 64}

# Goals (issues 9 and 13), checked in the notes (never asserted).
GOAL_RPS_SHARE: Final = 0.85
GOAL_CPU_RATIO: Final = 1.2
GOAL_VS_OFFICIAL: Final = 2.5

BASELINE_ENV: Final = "CODEGEN_BENCH_BASELINE"
BASELINE_MARK: Final = " @ baseline"
# The SDK's own clients, measured again from the baseline checkout when one is given.
SDK_CLIENTS: Final = ("AsyncAgent", "codegen_sync.Agent")


class Unavailable(Exception):
    """The client cannot be measured here (not installed, or not built yet)."""


# --- the clients, one factory each -------------------------------------------------------
# An async factory returns (call, close): ``await call()`` does one get_run and decodes it.
# A sync factory returns (call, close) with a plain blocking ``call()``.

AsyncCall = Callable[[], Awaitable[Any]]
SyncCall = Callable[[], Any]


async def _raw_aiohttp(server: ServerInfo) -> tuple[AsyncCall, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    url = server.run_url
    headers = {"Authorization": f"Bearer {server.token}", "Accept": "application/json"}

    async def call() -> Any:
        async with session.get(url, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"unexpected status {resp.status}")
            return json.loads(body)

    return call, session.close


async def _httpx(server: ServerInfo) -> tuple[AsyncCall, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(
        headers={"Authorization": f"Bearer {server.token}"},
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
    )
    url = server.run_url

    async def call() -> Any:
        resp = await client.get(url)
        resp.raise_for_status()
        return resp.json()

    return call, client.aclose


async def _async_agent(server: ServerInfo) -> tuple[AsyncCall, Callable[[], Awaitable[None]]]:
    from codegen_async import AsyncAgent, RateLimits

    agent = AsyncAgent(
        server.token,
        server.org_id,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
    )
    run_id = server.agent_run_id

    def call() -> Awaitable[Any]:
        return agent.get_run(run_id)

    return call, agent.aclose


def _sync_agent(server: ServerInfo) -> tuple[SyncCall, Callable[[], None]]:
    try:
        import codegen_sync

        agent_cls = codegen_sync.Agent
    except (ImportError, AttributeError) as exc:
        raise Unavailable(f"codegen_sync.Agent cannot be imported ({exc})") from None
    from codegen_async import RateLimits

    agent = agent_cls(
        server.token,
        server.org_id,
        base_url=server.base_url,
        rate_limits=RateLimits.disabled(),
    )
    run_id = server.agent_run_id

    def call() -> Any:
        return agent.get_run(run_id)

    return call, agent.close


def _official(server: ServerInfo) -> tuple[SyncCall, Callable[[], None]]:
    try:
        from codegen_api_client.api.agents_api import AgentsApi
        from codegen_api_client.api_client import ApiClient
        from codegen_api_client.configuration import Configuration
    except ImportError as exc:
        raise Unavailable(f"codegen-api-client is not installed ({exc})") from None

    config = Configuration(host=server.base_url)
    # Its default pool keeps 5 connections per core; give each thread its own connection.
    config.connection_pool_maxsize = THREADS
    client = ApiClient(config, header_name="Authorization", header_value=f"Bearer {server.token}")
    api = AgentsApi(client)
    get = api.get_agent_run_v1_organizations_org_id_agent_run_agent_run_id_get
    org_id, run_id = server.org_id, server.agent_run_id

    def call() -> Any:
        return get(agent_run_id=run_id, org_id=org_id)

    def close() -> None:
        client.rest_client.pool_manager.clear()

    return call, close


ASYNC_FACTORIES: Final = {
    "raw aiohttp": _raw_aiohttp,
    "httpx.AsyncClient": _httpx,
    "AsyncAgent": _async_agent,
}
SYNC_FACTORIES: Final = {
    "codegen_sync.Agent": _sync_agent,
    "codegen-api-client": _official,
}


# --- measuring, inside the client's own subprocess -----------------------------------------
def _shares(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


async def _drive_async(call: AsyncCall, concurrency: int, calls: int) -> None:
    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    await asyncio.gather(*(worker(n) for n in _shares(calls, concurrency)))


async def _measure_async(
    factory: Callable[[ServerInfo], Awaitable[tuple[AsyncCall, Callable[[], Awaitable[None]]]]],
    server: ServerInfo,
    calls: int,
    warmup: int,
    modes: tuple[int, ...] = (),
) -> dict[str, dict[str, float]]:
    call, close = await factory(server)
    out: dict[str, dict[str, float]] = {}
    try:
        for concurrency in modes or (1, ASYNC_CONCURRENCY):
            await _drive_async(call, concurrency, max(warmup, 2 * concurrency))
            wall, cpu = time.perf_counter(), time.process_time()
            await _drive_async(call, concurrency, calls)
            out[str(concurrency)] = {
                "seconds": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
            }
    finally:
        await close()
    return out


def _drive_threads(pool: ThreadPoolExecutor, call: SyncCall, threads: int, calls: int) -> None:
    def worker(n: int) -> None:
        for _ in range(n):
            call()

    for future in [pool.submit(worker, n) for n in _shares(calls, threads)]:
        future.result()


def _measure_sync(
    factory: Callable[[ServerInfo], tuple[SyncCall, Callable[[], None]]],
    server: ServerInfo,
    calls: int,
    warmup: int,
    modes: tuple[int, ...] = (),
) -> dict[str, dict[str, float]]:
    call, close = factory(server)
    out: dict[str, dict[str, float]] = {}
    modes = modes or (1, THREADS)
    try:
        if 1 in modes:
            for _ in range(warmup):
                call()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                call()
            out["1"] = {"seconds": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
        if THREADS not in modes:
            return out
        with ThreadPoolExecutor(THREADS) as pool:
            _drive_threads(pool, call, THREADS, max(warmup, 2 * THREADS))
            wall, cpu = time.perf_counter(), time.process_time()
            _drive_threads(pool, call, THREADS, calls)
            out[str(THREADS)] = {
                "seconds": time.perf_counter() - wall,
                "cpu": time.process_time() - cpu,
            }
    finally:
        close()
    return out


def _settle_allocator() -> None:
    """Free one block over glibc's mmap threshold, so that it stops mapping 256 KiB reads.

    See the module note: without this, each client's per-read cost depends on its imports.
    """
    block = bytearray(1 << 20)
    del block


def _child(
    client: str, server: ServerInfo, calls: int, warmup: int, only: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Measure one client in this process; a JSON-ready dict of modes, or why it cannot.

    ``only`` limits the modes (calls in flight) measured; all of the client's by default.
    """
    _settle_allocator()
    try:
        if client in ASYNC_FACTORIES:
            modes = asyncio.run(
                _measure_async(ASYNC_FACTORIES[client], server, calls, warmup, only)
            )
        else:
            modes = _measure_sync(SYNC_FACTORIES[client], server, calls, warmup, only)
    except Unavailable as exc:
        return {"unavailable": str(exc)}
    sdk = sys.modules.get("codegen_async")
    # Where the SDK measured came from (this checkout or a baseline's), for the record.
    return {"modes": modes, "sdk": getattr(sdk, "__file__", None)}


def child_command(
    client: str,
    server: ServerInfo,
    calls: int,
    warmup: int,
    *,
    modes: tuple[int, ...] = (),
    sdk_path: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that measure ``client`` in a child process.

    ``modes`` limits the calls-in-flight measured (default: all of the client's);
    ``sdk_path`` imports the SDK from another checkout. Used by the instructions scenario too.
    """
    info = {
        "base_url": server.base_url,
        "token": server.token,
        "org_id": server.org_id,
        "agent_run_id": server.agent_run_id,
        "pid": server.pid,
    }
    cmd = [sys.executable, "-m", "benchmarks.bench_overhead", "--child", client]
    cmd += ["--server", json.dumps(info), "--calls", str(calls), "--warmup", str(warmup)]
    if modes:
        cmd += ["--modes", ",".join(str(m) for m in modes)]
    if sdk_path:
        cmd += ["--sdk-path", sdk_path]
    existing = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}",
    }
    return cmd, env


def _run_child(
    client: str, server: ServerInfo, calls: int, warmup: int, sdk_path: str | None = None
) -> dict[str, Any]:
    cmd, env = child_command(client, server, calls, warmup, sdk_path=sdk_path)
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"{client} failed (exit {proc.returncode}): " + " | ".join(tail))
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- the scenario -------------------------------------------------------------------------
def _mode_label(kind: str, concurrency: int) -> str:
    if concurrency == 1:
        return "sequential"
    return f"{concurrency} tasks" if kind == "async" else f"{concurrency} threads"


def _measured(baseline: str | None) -> list[tuple[str, str, str | None]]:
    """(row name, client, SDK checkout to import it from) for every client to measure."""
    clients: list[tuple[str, str, str | None]] = [(c, c, None) for c, _kind in CLIENTS]
    if baseline:
        clients += [(c + BASELINE_MARK, c, baseline) for c in SDK_CLIENTS]
    return clients


def run(quick: bool = False, baseline: str | None = None) -> dict[str, Any]:
    """Measure every client; rows of medians with ratios to raw aiohttp.

    Args:
        quick: A short smoke run.
        baseline: A checkout of another SDK version to measure beside this one (default:
            ``$CODEGEN_BENCH_BASELINE``, if set).
    """
    settings = QUICK if quick else FULL
    calls, reps, warmup = settings["calls"], settings["reps"], settings["warmup"]
    baseline = baseline or os.environ.get(BASELINE_ENV) or None
    if baseline and not (Path(baseline) / "codegen_async" / "__init__.py").is_file():
        raise ValueError(f"{BASELINE_ENV}={baseline!r} is not a checkout of codegen-async")
    kinds = dict(CLIENTS)
    measured = _measured(baseline)
    # (client, mode) -> repetition -> {"seconds", "cpu"}
    samples: dict[tuple[str, str], dict[int, dict[str, float]]] = {}
    unavailable: dict[str, str] = {}
    with serve_get_run() as server:
        for rep in range(reps):
            for name, client, sdk_path in measured:
                if name in unavailable:
                    continue
                result = _run_child(client, server, calls, warmup, sdk_path)
                if "unavailable" in result:
                    unavailable[name] = result["unavailable"]
                    continue
                for mode, sample in result["modes"].items():
                    samples.setdefault((name, mode), {})[rep] = sample

    def rps(sample: dict[str, float]) -> float:
        return calls / sample["seconds"]

    def cpu(sample: dict[str, float]) -> float:
        return sample["cpu"] / calls * 1000

    rows: list[dict[str, Any]] = []
    for client, real_client, _path in measured:
        kind = kinds[real_client]
        modes = (1, ASYNC_CONCURRENCY) if kind == "async" else (1, THREADS)
        for concurrency in modes:
            row: dict[str, Any] = {
                "client": client,
                "mode": _mode_label(kind, concurrency),
                "in flight": concurrency,
            }
            runs = samples.get((client, str(concurrency)))
            if not runs:
                row.update(
                    {
                        "req/s": None,
                        "CPU s / 1k calls": None,
                        "req/s vs raw": None,
                        "CPU vs raw": None,
                        "spread": None,
                        "status": "not available: " + unavailable.get(client, "no data"),
                    }
                )
                rows.append(row)
                continue
            rates = [rps(x) for x in runs.values()]
            median_rps = statistics.median(rates)
            # Ratios pair each repetition with raw aiohttp's of the same repetition (run
            # back to back), then take the median: drift on the machine cancels out.
            ref = samples.get(("raw aiohttp", "1" if concurrency == 1 else str(ASYNC_CONCURRENCY)))
            pairs = [(x, ref[rep]) for rep, x in runs.items() if ref and rep in ref]
            row.update(
                {
                    "req/s": round(median_rps),
                    "CPU s / 1k calls": round(statistics.median(cpu(x) for x in runs.values()), 4),
                    "req/s vs raw": round(statistics.median(rps(x) / rps(r) for x, r in pairs), 3)
                    if pairs
                    else None,
                    "CPU vs raw": round(statistics.median(cpu(x) / cpu(r) for x, r in pairs), 3)
                    if pairs
                    else None,
                    "spread": f"{(max(rates) - min(rates)) / median_rps:.0%}",
                    "status": "ok",
                }
            )
            rows.append(row)

    notes = [
        f"{calls:,} calls per mode after {warmup} warm-up calls; median of {reps} "
        f"repetition{'s' if reps > 1 else ''} (spread: (max - min) / median of req/s).",
        "CPU is the client process's CPU time (all its threads); the server runs in another "
        "process. Ratios: sequential rows against raw aiohttp sequential, concurrent rows "
        f"against raw aiohttp at {ASYNC_CONCURRENCY} tasks; each is the median of the "
        "per-repetition ratios (every repetition runs all clients back to back).",
        "Each client's process first frees a 1 MiB block, so that glibc serves asyncio's "
        "256 KiB socket reads from its heap in every client alike (see the module note).",
        *_goal_notes(rows),
        *_baseline_notes(samples, baseline, calls),
    ]
    notes.extend(f"{client}: not available ({why})" for client, why in unavailable.items())
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "client",
                "y": "req/s",
                "series": "mode",
                "title": "get_run requests per second (higher is better)",
            },
            {
                "kind": "bar",
                "x": "client",
                "y": "CPU s / 1k calls",
                "series": "mode",
                "title": "Client CPU seconds per 1,000 get_run calls (lower is better)",
            },
        ],
    }


def _goal_notes(rows: list[dict[str, Any]]) -> list[str]:
    def find(client: str, mode: str) -> dict[str, Any] | None:
        for row in rows:
            if row["client"] == client and row["mode"] == mode and row["status"] == "ok":
                return row
        return None

    notes = []
    agent = find("AsyncAgent", f"{ASYNC_CONCURRENCY} tasks")
    if agent and agent["req/s vs raw"] is not None:
        share, cpu = agent["req/s vs raw"], agent["CPU vs raw"]
        notes.append(
            f"Goal: AsyncAgent at {ASYNC_CONCURRENCY} in flight >= {GOAL_RPS_SHARE:.0%} of raw "
            f"aiohttp's req/s: {share:.0%} ({_verdict(share >= GOAL_RPS_SHARE)}); CPU per call "
            f"<= {GOAL_CPU_RATIO}x: {cpu:.2f}x ({_verdict(cpu <= GOAL_CPU_RATIO)})."
        )
    official = [
        r["req/s"]
        for r in rows
        if r["client"] == "codegen-api-client" and r["status"] == "ok" and r["req/s"]
    ]
    if agent and official:
        factor = agent["req/s"] / max(official)
        notes.append(
            f"Goal: AsyncAgent >= {GOAL_VS_OFFICIAL}x the official client at its best: "
            f"{factor:.1f}x ({_verdict(factor >= GOAL_VS_OFFICIAL)})."
        )
    sync_seq = find("codegen_sync.Agent", "sequential")
    official_seq = find("codegen-api-client", "sequential")
    if sync_seq and official_seq:
        factor = sync_seq["req/s"] / official_seq["req/s"]
        notes.append(
            "Goal: codegen_sync.Agent sequentially no slower than the official client: "
            f"{factor:.2f}x its req/s ({_verdict(factor >= 1.0)})."
        )
    return notes


def _baseline_notes(
    samples: dict[tuple[str, str], dict[int, dict[str, float]]], baseline: str | None, calls: int
) -> list[str]:
    """This checkout's SDK clients against the baseline's: per-repetition CPU ratios, median."""
    if not baseline:
        return []
    notes = [f"Baseline: {baseline}."]
    for client in SDK_CLIENTS:
        for mode, runs in sorted(
            (mode, runs) for (name, mode), runs in samples.items() if name == client
        ):
            base = samples.get((client + BASELINE_MARK, mode), {})
            pairs = [(runs[rep], base[rep]) for rep in runs if rep in base]
            if not pairs:
                continue
            cpu = statistics.median(now["cpu"] / then["cpu"] for now, then in pairs)
            rps = statistics.median(then["seconds"] / now["seconds"] for now, then in pairs)
            notes.append(
                f"{client} at {mode} in flight against the baseline: CPU per call {cpu:.3f}x, "
                f"req/s {rps:.3f}x (median of {len(pairs)} paired repetitions)."
            )
    return notes


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> None:
    """Print the rows (or, with ``--child``, measure one client and print JSON)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_overhead")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=FULL["calls"], help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=FULL["warmup"], help=argparse.SUPPRESS)
    parser.add_argument("--sdk-path", help=argparse.SUPPRESS)
    parser.add_argument("--modes", default="", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", help="another checkout of the SDK to measure beside this one")
    args = parser.parse_args(argv)
    if args.child:
        if args.sdk_path:
            # Import the SDK from that checkout; nothing has imported it yet in this child.
            sys.path.insert(0, str(Path(args.sdk_path).resolve()))
        server = ServerInfo(**json.loads(args.server))
        only = tuple(int(m) for m in args.modes.split(",") if m)
        print(json.dumps(_child(args.child, server, args.calls, args.warmup, only)))
        return
    result = run(quick=args.quick, baseline=args.baseline)
    for row in result["rows"]:
        print(row)
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
