"""The emulator's command line: ``python -m codegen_async.emulator`` (and ``codegen-api emulator``).

The first line on standard output is one JSON object, ``{"base_url", "token", "org_id"}``,
so that a parent process can read where to connect; human-readable notes go to standard
error. SIGINT and SIGTERM stop the server cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence

from ._emulator import Emulator

__all__ = ["add_arguments", "main", "serve"]


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser`` (used by ``codegen-api emulator`` too)."""
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="F",
        help="multiply every duration (quota windows, run durations, token expiry) by F",
    )
    parser.add_argument(
        "--rate-limit",
        choices=("fixed", "sliding", "off"),
        default="fixed",
        help="server-side quota windows (default fixed)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated world")
    parser.add_argument(
        "--status-style",
        choices=("api", "docs"),
        default="api",
        help="run statuses as the service sends them (ACTIVE, COMPLETE, ...) or as the "
        "documentation writes them (running, completed, ...)",
    )
    parser.add_argument("--token", default=None, help="API token to accept (default: seeded)")
    parser.add_argument("--org-id", type=int, default=None, help="organization id (default 1)")
    parser.add_argument(
        "--run-duration",
        type=float,
        nargs=2,
        default=(5.0, 30.0),
        metavar=("MIN", "MAX"),
        help="seconds (before scaling) an agent run takes; default 5 30",
    )
    parser.add_argument(
        "--failure-rate",
        type=_rate,
        default=0.0,
        help="share of runs that fail (default 0: every run completes)",
    )
    parser.add_argument(
        "--max-runs", type=int, default=None, help="runs allowed before 402 (default: no limit)"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on standard error")


async def _serve(args: argparse.Namespace) -> None:
    emulator = Emulator(
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        rate_limit=args.rate_limit,
        seed=args.seed,
        status_style=args.status_style,
        run_duration=(args.run_duration[0], args.run_duration[1]),
        failure_rate=args.failure_rate,
        token=args.token,
        org_id=args.org_id,
        max_runs=args.max_runs,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
            pass
    try:
        await emulator.start()
        ready = {"base_url": emulator.base_url, "token": emulator.token, "org_id": emulator.org_id}
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        if not args.quiet:
            print(
                f"Codegen API emulator on {emulator.base_url} (org {emulator.org_id}, "
                f"time scale {emulator.time_scale:g}, rate limit {args.rate_limit}); "
                "stop with Ctrl+C"
                + (
                    f"\nclients keep its quotas with CODEGEN_RATE_LIMIT_SCALE="
                    f"{emulator.time_scale!r} (or codegen-api --rate-limit-scale "
                    f"{emulator.time_scale!r})"
                    if emulator.time_scale != 1.0
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await emulator.stop()


def serve(args: argparse.Namespace) -> int:
    """Run the emulator with parsed options until SIGINT or SIGTERM; return the exit status."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m codegen_async.emulator`` entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m codegen_async.emulator",
        description="Serve an emulation of the Codegen API on loopback, for tests and demos.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
