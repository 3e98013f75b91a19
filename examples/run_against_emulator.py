"""Run the examples against an emulator started for the occasion (no credentials needed).

    python examples/run_against_emulator.py                      # every example
    python examples/run_against_emulator.py current_user.py ...  # some of them

Starts ``codegen_async.emulator.EmulatorThread`` with every duration scaled by
``--time-scale`` (default 0.05), points the CODEGEN_* environment variables at it, runs each
example in its own process, and reports which ones exited 0. Files the examples write go
under a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codegen_async.emulator import EmulatorThread

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", help="example files (default: all)")
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--quiet", action="store_true", help="hide the examples' output")
    args = parser.parse_args(argv)

    names = args.examples or sorted(
        p.name for p in HERE.glob("*.py") if p.name != Path(__file__).name
    )
    failures = []
    with EmulatorThread(time_scale=args.time_scale) as emu, tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            **emu.client_env(),  # CODEGEN_* for Agent(), quotas scaled like the emulator's
            "CODEGEN_EXAMPLE_TIME_SCALE": str(args.time_scale),
            "CODEGEN_EXAMPLE_OUTPUT_DIR": tmp,
            "PYTHONIOENCODING": "utf-8",
        }
        for name in names:
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, str(HERE / Path(name).name)],
                env=env,
                capture_output=True,
                text=True,
                encoding="utf-8",
                check=False,
            )
            took = time.monotonic() - started
            mark = "ok  " if proc.returncode == 0 else "FAIL"
            print(f"{mark} {name} ({took:.1f}s)")
            if not args.quiet or proc.returncode:
                for line in (proc.stdout + proc.stderr).splitlines():
                    print(f"     {line}")
            if proc.returncode:
                failures.append(name)
    print(f"\n{len(names) - len(failures)} of {len(names)} examples ran cleanly")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
