"""Fleets: P processes on one token waiting on the same 400 runs, shared or each on its own.

The 400 runs are split across P worker processes (P = 1, 4, 8), each a fresh interpreter
with one ``AsyncAgent`` whose rate-limit backend is a local ``redis-server`` (so the quota
is shared), waiting on its share with ``as_completed``. Two modes side by side:

* **shared**: fleet-wide run watching (the default with Redis): one leader polls for all;
* **per-process**: ``fleet_polling=False``: every process runs its own poller (before).

For each: p50 / p95 **detection latency** (when a worker learned that a run had finished,
minus when the emulator finished it), the requests on the run routes (``get_run`` and
``list_runs``) and their rate next to ``poll_share`` (0.5) of each route's quota, and the
429s the emulator sent. The emulator runs in its own process at ``time_scale=0.01``; the
runs' durations are spread evenly at random over 2 s (one finishing every 5 ms on average),
starting 3 s after they were created; the workers start (and import) before the emulator does.
A **leader-kill** run (shared, P = 4) SIGKILLs the leading process 0.5 s after the first
run ended: every wait in the other processes must still complete, and the detection gap is
shown (the slowest detection of a run finished after the kill).

Run it alone with ``python -m benchmarks.bench_fleet [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any, Final

import aiohttp

from benchmarks import NotAvailable
from benchmarks._servers import REPO_ROOT, stop_process
from benchmarks.bench_fanout import POLL_ROUTES, TIME_SCALE, emulator
from codegen_async import ENDPOINTS

NAME: Final = "fleet"
TITLE: Final = "A fleet of P processes waiting on 400 runs: shared vs per-process polling"

RUNS: Final = 400
START: Final = 300.0  # real seconds before the first run ends: the workers subscribe meanwhile
DURATION: Final = (START + 5.0, START + 205.0)  # scaled: one finish every 5 ms on average
SHARE: Final = 0.5  # the default poll_share
FULL: Final[dict[str, Any]] = {"processes": (1, 4, 8), "reps": 3}
QUICK: Final[dict[str, Any]] = {"processes": (1, 2), "reps": 1}
WORKER_TIMEOUT: Final = 120.0  # a wait that never ends fails the run (with its run ids)
KILL_AFTER: Final = 0.5  # seconds after the workers started
LEADER_KEY: Final = "bench:fleet:leader"


# --- the workers ---------------------------------------------------------------------------


async def _worker(args: argparse.Namespace) -> None:
    import redis.asyncio

    from codegen_async import AsyncAgent, RateLimits

    if os.environ.get("BENCH_FLEET_DEBUG"):  # who leads, when: on standard error
        import logging

        logging.basicConfig(format=f"%(relativeCreated)6.0f {os.getpid()} %(message)s")
        logging.getLogger("codegen_async.polling").setLevel(logging.DEBUG)
    # Ready (imports done) before the emulator starts: a loaded machine takes seconds to
    # start eight interpreters, and that must not count as detection latency.
    print("ready", flush=True)
    job = json.loads(await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline))
    ids: list[int] = job["ids"]
    timeout = float(os.environ.get("BENCH_FLEET_TIMEOUT", WORKER_TIMEOUT))
    # A worker that outlives its own timeout is a bug: it says where every task and thread is.
    watchdog = asyncio.ensure_future(_dump_tasks_after(timeout + 20))
    faulthandler.dump_traceback_later(timeout + 30)
    detected: dict[int, float] = {}
    marker = redis.asyncio.Redis.from_url(args.redis, socket_timeout=10)
    async with AsyncAgent(
        job["token"],
        job["org_id"],
        base_url=job["base_url"],
        rate_limits=RateLimits.documented(scale=TIME_SCALE),
        rate_limit_backend=args.redis,
        fleet_polling=args.mode == "shared",
    ) as agent:
        stop = asyncio.Event()
        teller = asyncio.ensure_future(_announce_leader(agent._watcher(), marker, stop))
        try:
            async for run in agent.as_completed(ids, timeout=timeout):
                detected[run.id] = time.time()
        finally:
            stop.set()
            await teller
        print(json.dumps({"detected": detected, "requests": agent.stats.requests}), flush=True)
    await marker.aclose()
    faulthandler.cancel_dump_traceback_later()
    watchdog.cancel()


async def _announce_leader(watcher: Any, marker: Any, stop: asyncio.Event) -> None:
    """Write this process's pid to ``LEADER_KEY`` while its watcher leads, until ``stop``.

    Stopped by an event, not by cancelling: on Python 3.10/3.11 redis-py's
    ``asyncio.wait_for`` around a send loses a cancellation that lands as the send completes
    (CPython gh-86296), and the worker then never ended (CI, 2026-11-29).
    """
    while not stop.is_set():
        if getattr(watcher, "leading", False):
            await marker.set(LEADER_KEY, os.getpid())
        await asyncio.sleep(0.02)


async def _dump_tasks_after(delay: float) -> None:
    await asyncio.sleep(delay)
    print(f"worker {os.getpid()} still runs {delay:.0f} s on; its tasks:", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


def _spawn_worker(redis_url: str, mode: str) -> Any:
    """A worker process; it says ``ready``, then takes its job as one JSON line."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_fleet",
            "--worker",
            f"--redis={redis_url}",
            f"--mode={mode}",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc


# --- redis ---------------------------------------------------------------------------------


@contextlib.contextmanager
def redis_server() -> Any:
    binary = shutil.which("redis-server")
    if binary is None:
        raise NotAvailable("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(host="127.0.0.1", port=port)
            deadline = time.monotonic() + 10
            while True:
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop_process(proc)


def _flush(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


# --- one measurement -----------------------------------------------------------------------


def measure(
    processes: int, mode: str, redis_url: str, seed: int, kill: bool = False
) -> dict[str, Any]:
    """A fresh emulator with 400 runs, waited on by ``processes`` workers in ``mode``."""
    _flush(redis_url)
    workers = [_spawn_worker(redis_url, mode) for _ in range(processes)]
    try:
        for proc in workers:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a worker did not start (exit code {proc.poll()})")
        return _measure_with(workers, processes, redis_url, seed, kill)
    finally:
        for proc in workers:
            stop_process(proc)


def _measure_with(
    workers: list[Any], processes: int, redis_url: str, seed: int, kill: bool
) -> dict[str, Any]:
    with emulator(RUNS, seed, DURATION) as info:
        ids: list[int] = info["ids"]
        first_finish = time.time() + (START + 5.0) * TIME_SCALE
        chunks = [ids[i::processes] for i in range(processes)]
        for proc, chunk in zip(workers, chunks, strict=True):
            job = {key: info[key] for key in ("base_url", "token", "org_id")}
            proc.stdin.write(json.dumps({**job, "ids": chunk}) + "\n")
            proc.stdin.flush()
        killed_at = None
        killed_pid = None
        time.sleep(max(first_finish - time.time(), 0.0))
        before = _stats(info)  # the route rates count from the first finish on
        if kill:
            time.sleep(max(first_finish + KILL_AFTER - time.time(), 0.0))
            killed_pid, killed_at = _kill_leader(redis_url, workers)
        outputs = []
        for proc in workers:
            out, _ = proc.communicate(timeout=WORKER_TIMEOUT + 60)
            if proc.pid != killed_pid:
                if proc.returncode != 0:
                    raise RuntimeError(f"a worker failed (exit code {proc.returncode})")
                outputs.append(json.loads(out.strip().splitlines()[-1]))
        return asyncio.run(_collect(info, outputs, before, killed_at))


def _kill_leader(redis_url: str, workers: list[Any]) -> tuple[int | None, float | None]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid = client.get(LEADER_KEY)
            if pid is not None and int(pid) in {w.pid for w in workers}:
                os.kill(int(pid), signal.SIGKILL)
                return int(pid), time.time()
            time.sleep(0.01)
    finally:
        client.close()
    raise RuntimeError("no leader to kill")


async def _collect(
    info: dict[str, Any],
    outputs: list[dict[str, Any]],
    before: dict[str, Any],
    killed_at: float | None,
) -> dict[str, Any]:
    detected = {int(k): v for out in outputs for k, v in out["detected"].items()}
    async with aiohttp.ClientSession() as session:
        async with session.get(info["base_url"] + "/_emulator/stats") as resp:
            stats = await resp.json()
        finished = dict(
            zip(
                detected,
                await asyncio.gather(*(_finished_at(session, info, i) for i in detected)),
                strict=True,
            )
        )
    latencies = sorted(detected[i] - finished[i] for i in detected)
    # Rates over the time runs were finishing and being detected (not the idle start).
    wall = max(max(detected.values()) - min(finished.values()), 1e-3)
    early = before["requests"]
    requests = stats["requests"]
    get_route, list_route = ENDPOINTS["get_run"].route, ENDPOINTS["list_runs"].route
    row = {
        "p50 ms": round(_quantile(latencies, 0.5) * 1000, 1),
        "p95 ms": round(_quantile(latencies, 0.95) * 1000, 1),
        "run-route requests": sum(requests.get(route, 0) for route in POLL_ROUTES),
        "429s": stats["rate_limited"],
        "get_run/s": round((requests.get(get_route, 0) - early.get(get_route, 0)) / wall, 1),
        "list_runs/s": round((requests.get(list_route, 0) - early.get(list_route, 0)) / wall, 1),
        "waits done": len(detected),
    }
    if killed_at is not None:
        after = [detected[i] - finished[i] for i in detected if finished[i] >= killed_at - 0.5]
        row["gap ms"] = round(max(after, default=0.0) * 1000, 1)
    return row


def _stats(info: dict[str, Any]) -> dict[str, Any]:
    with urllib.request.urlopen(info["base_url"] + "/_emulator/stats", timeout=30) as resp:
        stats: dict[str, Any] = json.load(resp)
    return stats


async def _finished_at(session: aiohttp.ClientSession, info: dict[str, Any], run_id: int) -> float:
    async with session.get(f"{info['base_url']}/_emulator/runs/{run_id}") as resp:
        body = await resp.json()
    return float(body["finished_at"])


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, int(q * len(values) + 0.999999) - 1))
    return values[index]


# --- the scenario --------------------------------------------------------------------------


def _budget(operation: str) -> float:
    quota = ENDPOINTS[operation].quota
    return round(quota.limit / (quota.window * TIME_SCALE) * SHARE, 1)


def run(quick: bool = False) -> dict[str, Any]:
    """Both modes at each P; medians over the repetitions; then one leader-kill run."""
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise NotAvailable("the redis package is not installed") from exc
    settings = QUICK if quick else FULL
    rows: list[dict[str, Any]] = []
    with redis_server() as url:
        for processes in settings["processes"]:
            for mode in ("shared", "per-process"):
                reps = [measure(processes, mode, url, seed) for seed in range(settings["reps"])]
                row: dict[str, Any] = {"processes": processes, "mode": mode}
                for key in reps[0]:
                    values = sorted(r[key] for r in reps)
                    row[key] = values[len(values) // 2]
                rows.append(row)
        victims = 2 if quick else 4
        kill = measure(victims, "shared", url, 0, kill=True)
        rows.append({"processes": victims, "mode": "shared, leader killed", **kill})
    one = next(r for r in rows if r["processes"] == 1 and r["mode"] == "shared")
    most = max(settings["processes"])
    fleet = next(r for r in rows if r["processes"] == most and r["mode"] == "shared")
    notes = [
        f"{RUNS} runs, durations uniform over 0.05-2.05 s (time scale {TIME_SCALE}); "
        f"median of {settings['reps']} per cell; redis-server and the emulator local.",
        f"poll_share budget: get_run {_budget('get_run')}/s, list_runs "
        f"{_budget('list_runs')}/s (half of each route's scaled quota).",
        f"P={most} shared vs P=1: p95 x{fleet['p95 ms'] / max(one['p95 ms'], 1e-9):.2f}, "
        f"run-route requests x{fleet['run-route requests'] / max(one['run-route requests'], 1):.2f}"
        " (goal: both <= 1.3).",
        "Timings from a shared, loaded machine are indicative only.",
    ]
    return {
        "name": NAME,
        "title": TITLE,
        "rows": rows,
        "notes": notes,
        "plots": [
            {
                "kind": "bar",
                "x": "processes",
                "y": "p95 ms",
                "series": "mode",
                "title": "p95 detection latency",
            },
            {
                "kind": "bar",
                "x": "processes",
                "y": "run-route requests",
                "series": "mode",
                "title": "Requests on the run routes",
            },
        ],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--redis")
    parser.add_argument("--mode")
    args = parser.parse_args(argv)
    if args.worker:
        asyncio.run(_worker(args))
        return
    result = run(quick=args.quick)
    from benchmarks._report import markdown_table

    print(markdown_table(result["rows"]))
    for note in result["notes"]:
        print("-", note)


if __name__ == "__main__":
    main()
