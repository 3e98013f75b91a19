"""``python -m codegen_async.emulator``: serve the emulated Codegen API on loopback."""

from __future__ import annotations

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
