"""An emulator of the Codegen API, for tests, demos and notebooks (like moto for boto3).

A real HTTP server on loopback that behaves like the service: every operation of the
OpenAPI description at the same paths, bearer auth, request validation with FastAPI-shaped
422 answers, the documented error bodies, per-route quotas with 429 and ``Retry-After``,
agent runs that finish on their own, and fault injection::

    from codegen_async import AsyncAgent
    from codegen_async.emulator import Emulator

    async with Emulator(time_scale=0.01) as emu, emu.client() as agent:
        run = await agent.run("Fix the flaky test", repo_id=456)
        ...

:class:`EmulatorThread` runs the same server on a background thread for blocking code;
``python -m codegen_async.emulator`` runs it from the command line; the pytest plugin
:mod:`codegen_async.emulator.pytest_plugin` gives tests ready-made fixtures.
"""

from __future__ import annotations

from ._cli import add_arguments, main, serve
from ._emulator import DEFAULT_ORG_ID, Emulator
from ._faults import FAULT_KINDS, FaultKind
from ._quota import RateLimitMode
from ._records import STATUS_WORDS, StatusStyle
from ._state import EmulatorState
from ._thread import EmulatorThread

__all__ = [
    "DEFAULT_ORG_ID",
    "FAULT_KINDS",
    "STATUS_WORDS",
    "Emulator",
    "EmulatorState",
    "EmulatorThread",
    "FaultKind",
    "RateLimitMode",
    "StatusStyle",
    "add_arguments",
    "main",
    "serve",
]
