"""``Runtime``: what every request handler of one emulator shares.

The state (the world), the counters, the pending faults and the server-side quota counters,
plus the handler tasks in flight, so a stop can wait for the last of them to end.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from .._endpoints import ENDPOINTS
from ._faults import Fault, FaultBook
from ._quota import ServerRateLimiter
from ._state import EmulatorState
from ._stats import Stats

__all__ = ["Runtime", "inject_fault"]


class Runtime:
    """Everything the handlers share: state, counters, pending faults, quota counters."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        rate_limit: str,
        time_scale: float,
    ) -> None:
        self.state = state
        self.time_scale = time_scale
        self.stats = Stats(e.route for e in ENDPOINTS.values())
        self.faults = FaultBook()
        self.limiter = ServerRateLimiter(rate_limit, time_scale)  # type: ignore[arg-type]
        self._request_ids = itertools.count(1)
        self.handlers: set[asyncio.Task[Any]] = set()  # API handlers in flight
        # Fields a newer API would send: added to every model object of every answer.
        self.extra_fields: dict[str, Any] = {}

    def request_id(self) -> str:
        return f"req_emu_{next(self._request_ids):08d}"

    async def drain(self) -> None:
        """Cancel the API handlers still in flight and wait until each has ended."""
        pending = [task for task in self.handlers if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # --- admin operations (also the Python API of Emulator) ---------------------------
    def stats_snapshot(self) -> dict[str, Any]:
        now = time.time()
        data = self.stats.snapshot()
        data["runs"] = {"total": len(self.state.runs), **self.state.run_counts(now)}
        data["faults_triggered"] = dict(self.faults.triggered)
        data["faults_pending"] = self.faults.pending()
        data["config"] = {
            "time_scale": self.time_scale,
            "rate_limit": self.limiter.mode,
            "status_style": self.state.config.status_style,
            "run_duration": list(self.state.config.run_duration),
            "failure_rate": self.state.config.failure_rate,
            "max_runs": self.state.config.max_runs,
            "seed": self.state.seed,
        }
        return data

    def reset_stats(self) -> None:
        self.stats.reset()
        self.faults.triggered.clear()

    def info(self) -> dict[str, Any]:
        """The ids of the seeded world (no tokens)."""
        state = self.state
        return {
            "org_id": state.primary_org_id,
            "user_id": state.primary_user_id,
            "member_org_ids": [o.id for o in state.orgs_of(state.primary_user_id)],
            "foreign_org_id": state.foreign_org_id,
            "repo_ids": [r.id for r in state.repos_of(state.primary_org_id)],
            "sandboxes": {
                str(box.id): {
                    "organization_id": box.org_id,
                    "repo_id": box.repo_id,
                    "has_logs": bool(box.logs),
                    "error": box.failure.error if box.failure else None,
                }
                for box in state.sandboxes.values()
            },
            "pull_request_ids": sorted(state.pull_requests),
            "operations": {name: e.route for name, e in ENDPOINTS.items()},
        }


def inject_fault(
    rt: Runtime,
    operation: str,
    kind: str,
    *,
    count: int = 1,
    status: int | None = None,
    retry_after: float | str | None = None,
    delay: float | None = None,
) -> Fault:
    """Queue a fault for the next ``count`` requests of ``operation`` (or ``"*"``)."""
    if operation != "*" and operation not in ENDPOINTS:
        raise ValueError(f"unknown operation {operation!r}; use a name from ENDPOINTS or '*'")
    if retry_after is not None and (
        isinstance(retry_after, bool) or not isinstance(retry_after, (int, float, str))
    ):
        raise TypeError("retry_after must be seconds or an HTTP-date string")
    return rt.faults.add(
        operation, kind, count=count, status=status, retry_after=retry_after, delay=delay
    )
