"""429s a fleet draws while its Redis is down: 4 processes, one token, one emulator.

Every process warms up through Redis (so Redis sees the fleet), then Redis is stopped and
each process sends ``CALLS`` log analyses at once (quota 5 per window at time scale 0.01).
Each falls back to limiting in its own process; the figure is how many 429s the emulator
answers meanwhile, and how many calls still fail after their retries.

Run it with ``python -m benchmarks.redis_fallback [CALLS]`` (needs ``redis-server``).
Not a scenario of ``python -m benchmarks``: it measures a count, not a speed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import shutil
import socket
import subprocess
import sys
import time
from typing import Any

FLEET = 4
SCALE = 0.01


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _worker(info: dict[str, Any], redis_url: str, calls: int, go: Any, results: Any) -> None:
    logging.disable(logging.WARNING)  # one fallback warning per process is expected
    from codegen_async import AsyncAgent, RateLimits

    async def main() -> dict[str, Any]:
        async with AsyncAgent(
            info["token"],
            info["org_id"],
            base_url=info["base_url"],
            rate_limits=RateLimits.documented(SCALE),
            rate_limit_backend=redis_url,
        ) as agent:
            await agent.analyze_sandbox_logs(1)  # through Redis: it sees this process
            await asyncio.get_running_loop().run_in_executor(None, go.wait)
            done = await asyncio.gather(
                *(agent.analyze_sandbox_logs(1) for _ in range(calls)), return_exceptions=True
            )
            return {
                "failed": sum(isinstance(r, BaseException) for r in done),
                "rate_limited": agent.stats.rate_limited,
            }

    results.put(asyncio.run(main()))


def measure(calls: int = 25) -> dict[str, Any]:
    """Run the fleet once; return the emulator's 429 count and the calls that failed."""
    from codegen_async.emulator import EmulatorThread

    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is not installed")
    port = _free_port()
    redis = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Barrier(FLEET + 1)
    results = ctx.Queue()
    try:
        time.sleep(0.5)
        with EmulatorThread(time_scale=SCALE, rate_limit="sliding", seed=0) as emu:
            info = {"base_url": emu.base_url, "token": emu.token, "org_id": emu.org_id}
            procs = [
                ctx.Process(
                    target=_worker,
                    args=(info, f"redis://127.0.0.1:{port}/0", calls, go, results),
                )
                for _ in range(FLEET)
            ]
            for proc in procs:
                proc.start()
            time.sleep(8.0)  # every process has warmed up through Redis by now
            redis.terminate()
            redis.wait(10)
            emu.reset_stats()
            go.wait(timeout=120)
            outcomes = [results.get(timeout=300) for _ in procs]
            for proc in procs:
                proc.join(30)
            stats = emu.stats()
    finally:
        if redis.poll() is None:
            redis.terminate()
            redis.wait(10)
    return {
        "calls": FLEET * calls,
        "server_429": stats["rate_limited"],
        "failed": sum(o["failed"] for o in outcomes),
        "per_process_429": [o["rate_limited"] for o in outcomes],
    }


if __name__ == "__main__":
    print(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 25))
