"""``python -m benchmarks [--quick] [--only NAME ...] [--out DIR]``: run the benchmarks."""

from __future__ import annotations

import sys

from benchmarks._harness import main

if __name__ == "__main__":
    sys.exit(main())
