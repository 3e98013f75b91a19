"""Benchmarks of codegen-async against raw aiohttp, httpx and the official client.

Run every scenario with ``python -m benchmarks`` (``--quick`` for a smoke run, ``--only NAME``
for some, ``--out DIR`` for where the results go). Each scenario is a module
``benchmarks/bench_<name>.py`` with ``run(quick: bool = False) -> dict`` (see
``benchmarks._harness`` for the dictionary it returns); the harness runs each one in a fresh
subprocess and writes ``results.json``, ``report.md`` and PNG plots.
"""

from __future__ import annotations

__all__ = ["NotAvailable"]


class NotAvailable(Exception):
    """Raised by a scenario's ``run()`` when it cannot be measured here, with the reason.

    The harness reports the scenario as "not available" (not as failed), e.g. while a
    feature it measures is not built yet or an optional package is missing.
    """
