"""Servers for the benchmarks, each in its own process so that its CPU time and memory are
never charged to the client being measured.

- :func:`serve_get_run`: a minimal loopback server for pure client overhead. It answers
  ``GET /v1/organizations/{org_id}/agent/run/{agent_run_id}`` with one fixed, realistic
  ``AgentRunResponse`` body, checks that a bearer token was sent, and does nothing else: no
  routing table, no access log, no rate limits. By hand: ``python -m benchmarks._servers``.
- :func:`serve_emulator`: the SDK's emulator (``codegen_async.emulator.Emulator``), time
  scaled, with a number of agent runs already created (through the API) that stay
  unfinished for a given time. By hand: ``python -m benchmarks._servers --emulator-runs N``.

Both print one JSON line (where they listen, the token, ...) and serve until SIGINT or
SIGTERM, or (started by these functions, ``--exit-with-stdin``) until their standard input,
a pipe from the process that started them, closes: they stop with it even when it is
SIGKILLed (see ``benchmarks._procs``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs

from benchmarks._procs import exit_with_parent

__all__ = [
    "AGENT_RUN_ID",
    "ORG_ID",
    "RUN_BODY",
    "TOKEN",
    "EmulatorInfo",
    "ServerInfo",
    "serve_emulator",
    "serve_get_run",
]

REPO_ROOT: Final = Path(__file__).resolve().parent.parent

ORG_ID: Final = 42
AGENT_RUN_ID: Final = 1234
TOKEN: Final = "bench-token-not-a-secret"

# What the API sends for a finished run (fields and nullability from the OpenAPI schema).
RUN_BODY: Final = json.dumps(
    {
        "id": AGENT_RUN_ID,
        "organization_id": ORG_ID,
        "status": "COMPLETE",
        "created_at": "2025-06-01T12:00:00.000000Z",
        "web_url": f"https://codegen.com/agent/trace/{AGENT_RUN_ID}",
        "result": "Fixed the flaky test in tests/test_api.py and opened a pull request.",
        "summary": "Fix flaky test",
        "source_type": "API",
        "github_pull_requests": None,
        "metadata": {"ticket": "ENG-1234"},
    },
    separators=(",", ":"),
).encode()


@attrs.frozen
class ServerInfo:
    """Where a benchmark server listens and what to ask it for."""

    base_url: str
    token: str
    org_id: int
    agent_run_id: int
    pid: int

    @property
    def run_url(self) -> str:
        """The full URL of the one run this server knows."""
        return f"{self.base_url}/v1/organizations/{self.org_id}/agent/run/{self.agent_run_id}"


@attrs.frozen
class EmulatorInfo:
    """A running emulator and the runs created on it."""

    base_url: str
    token: str
    org_id: int
    run_ids: tuple[int, ...]
    finished_run_id: int
    time_scale: float
    pid: int


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(host: str, port: int) -> None:
    from aiohttp import web

    prefix = f"/v1/organizations/{ORG_ID}/agent/run/"
    not_found = json.dumps({"detail": "Not Found"}).encode()
    unauthorized = json.dumps({"detail": "Not authenticated"}).encode()

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return web.Response(status=401, body=unauthorized, content_type="application/json")
        path = request.path
        if request.method == "GET" and path.startswith(prefix) and path[len(prefix) :].isdigit():
            return web.Response(body=RUN_BODY, content_type="application/json")
        return web.Response(status=404, body=not_found, content_type="application/json")

    server = web.Server(handler, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(
        json.dumps(
            {
                "base_url": f"http://{host}:{bound}",
                "token": TOKEN,
                "org_id": ORG_ID,
                "agent_run_id": AGENT_RUN_ID,
            }
        ),
        flush=True,
    )
    try:
        await _wait_for_signal()
    finally:
        await runner.cleanup()


async def _serve_emulator(runs: int, time_scale: float, run_seconds: float) -> None:
    from codegen_async import AsyncAgent, RateLimits
    from codegen_async.emulator import Emulator

    # Runs last ``run_seconds`` of real time; no server-side quotas, so that creating
    # thousands of runs is quick (the measured client keeps its own, scaled, quotas).
    duration = run_seconds / time_scale
    emulator = Emulator(
        time_scale=time_scale,
        rate_limit="off",
        run_duration=(duration, duration),
        failure_rate=0.0,
    )
    async with (
        emulator,
        AsyncAgent(
            emulator.token,
            emulator.org_id,
            base_url=emulator.base_url,
            rate_limits=RateLimits.disabled(),
        ) as agent,
    ):
        finished = await agent.run("benchmark warm-up run")
        emulator.finish_run(finished.id, status="completed")
        ids: list[int] = []

        async def create(count: int) -> None:
            for _ in range(count):
                ids.append((await agent.run("benchmark run")).id)

        workers = 32
        await asyncio.gather(
            *(create(runs // workers + (i < runs % workers)) for i in range(workers))
        )
        print(
            json.dumps(
                {
                    "base_url": emulator.base_url,
                    "token": emulator.token,
                    "org_id": emulator.org_id,
                    "run_ids": sorted(ids),
                    "finished_run_id": finished.id,
                    "time_scale": time_scale,
                }
            ),
            flush=True,
        )
        await _wait_for_signal()


@contextlib.contextmanager
def serve_get_run(*, startup_timeout: float = 30.0) -> Iterator[ServerInfo]:
    """Start the get_run server in a child process; yield where it listens; stop it on exit.

    Raises:
        RuntimeError: the server did not report its address in time.
    """
    proc = _spawn([])
    try:
        info = _read_first_line(proc, startup_timeout)
        yield ServerInfo(
            base_url=info["base_url"],
            token=info["token"],
            org_id=info["org_id"],
            agent_run_id=info["agent_run_id"],
            pid=proc.pid,
        )
    finally:
        stop_process(proc)


@contextlib.contextmanager
def serve_emulator(
    runs: int, *, time_scale: float, run_seconds: float, startup_timeout: float = 300.0
) -> Iterator[EmulatorInfo]:
    """Start an emulator in a child process with ``runs`` unfinished runs; stop it on exit.

    Args:
        runs: How many agent runs to create before yielding.
        time_scale: The emulator's time scale (quotas, run durations, ...).
        run_seconds: Real seconds each run stays unfinished after it was created.
        startup_timeout: Seconds to wait for the runs to be created.

    Raises:
        RuntimeError: the emulator did not report in time.
    """
    proc = _spawn(
        [
            "--emulator-runs",
            str(runs),
            "--time-scale",
            repr(time_scale),
            "--run-seconds",
            repr(run_seconds),
        ]
    )
    try:
        info = _read_first_line(proc, startup_timeout)
        yield EmulatorInfo(
            base_url=info["base_url"],
            token=info["token"],
            org_id=info["org_id"],
            run_ids=tuple(info["run_ids"]),
            finished_run_id=info["finished_run_id"],
            time_scale=info["time_scale"],
            pid=proc.pid,
        )
    finally:
        stop_process(proc)


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks._servers", "--exit-with-stdin", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": _pythonpath()},
        stdin=subprocess.PIPE,  # never written to: its lifeline
        stdout=subprocess.PIPE,
        stderr=None,  # let a crash show on our standard error
        text=True,
    )


def _read_first_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(
            f"benchmark server did not start within {timeout:.0f}s (exit code {proc.poll()})"
        )
    info: dict[str, Any] = json.loads(line)
    return info


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Ask a child process to stop (SIGTERM), and kill it if it does not within ``grace``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH")
    return str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}"


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._servers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--emulator-runs",
        type=int,
        metavar="N",
        help="serve the SDK's emulator instead, with N unfinished runs created first",
    )
    parser.add_argument("--time-scale", type=float, default=0.01, help="emulator time scale")
    parser.add_argument(
        "--run-seconds", type=float, default=600.0, help="real seconds an emulator run lasts"
    )
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="also stop when standard input closes (the parent's lifeline)",
    )
    args = parser.parse_args(argv)
    if args.exit_with_stdin:
        exit_with_parent()
    if args.emulator_runs is not None:
        asyncio.run(_serve_emulator(args.emulator_runs, args.time_scale, args.run_seconds))
    else:
        asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
