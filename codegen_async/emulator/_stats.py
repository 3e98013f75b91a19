"""Counters of what the emulator saw and answered (``GET /_emulator/stats``)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

__all__ = ["Stats"]


class Stats:
    """Plain counters, bumped by the request handlers (one event loop, so no locks)."""

    __slots__ = (
        "dropped",
        "in_flight",
        "max_in_flight",
        "rate_limited",
        "rate_limited_by_route",
        "requests",
        "responses",
        "runs_created",
        "started",
        "unknown_routes",
    )

    def __init__(self, routes: Iterable[str]) -> None:
        self.requests: dict[str, int] = dict.fromkeys(routes, 0)
        self.responses: dict[int, int] = {}
        self.rate_limited = 0
        self.rate_limited_by_route: dict[str, int] = {}
        self.runs_created: dict[str, int] = {}
        self.dropped = 0
        self.unknown_routes = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = time.monotonic()

    # --- what the request handlers count ---------------------------------------------------
    def request_started(self, route: str) -> None:
        self.requests[route] += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight

    def request_ended(self) -> None:
        self.in_flight -= 1

    def answered(self, status: int) -> None:
        self.responses[status] = self.responses.get(status, 0) + 1

    def refused(self, route: str) -> None:
        """A request refused by the server-side quota (429)."""
        self.rate_limited += 1
        self.rate_limited_by_route[route] = self.rate_limited_by_route.get(route, 0) + 1

    def run_created(self, operation: str) -> None:
        self.runs_created[operation] = self.runs_created.get(operation, 0) + 1

    def connection_dropped(self) -> None:
        self.dropped += 1

    def reset(self) -> None:
        """Zero every counter (``max_in_flight`` restarts from the requests in flight)."""
        for route in self.requests:
            self.requests[route] = 0
        self.responses.clear()
        self.rate_limited = 0
        self.rate_limited_by_route.clear()
        self.runs_created.clear()
        self.dropped = 0
        self.unknown_routes = 0
        self.max_in_flight = self.in_flight
        self.started = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready data (status codes as string keys)."""
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "responses": {str(code): n for code, n in sorted(self.responses.items())},
            "rate_limited": self.rate_limited,
            "rate_limited_by_route": dict(self.rate_limited_by_route),
            "runs_created": sum(self.runs_created.values()),
            "runs_created_by_operation": dict(self.runs_created),
            "dropped_connections": self.dropped,
            "unknown_routes": self.unknown_routes,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "seconds_since_reset": round(time.monotonic() - self.started, 6),
        }
