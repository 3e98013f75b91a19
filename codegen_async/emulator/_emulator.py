"""``Emulator``: the emulated Codegen API as an async context manager."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final

from aiohttp import web

from .. import AsyncAgent, RateLimits  # the public face: the client side of the emulator
from ._app import build_app
from ._faults import FaultKind
from ._quota import RateLimitMode
from ._records import EmulatorConfig, StatusStyle
from ._runtime import Runtime, inject_fault
from ._seed import seed_state
from ._state import EmulatorState

__all__ = ["DEFAULT_ORG_ID", "Emulator"]

DEFAULT_ORG_ID: Final = 1
SHUTDOWN_TIMEOUT: Final = 0.5  # seconds a stop waits for requests still being answered


def _check_settings(
    port: int,
    time_scale: float,
    rate_limit: str,
    status_style: str,
    run_duration: tuple[float, float],
    failure_rate: float,
    org_id: int | None,
    max_runs: int | None,
    token: str | None,
) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port!r}")
    if not isinstance(time_scale, (int, float)) or not math.isfinite(time_scale) or time_scale <= 0:
        raise ValueError(f"time_scale must be a positive number, got {time_scale!r}")
    if rate_limit not in ("fixed", "sliding", "off"):
        raise ValueError(f"rate_limit must be 'fixed', 'sliding' or 'off', got {rate_limit!r}")
    if status_style not in ("api", "docs"):
        raise ValueError(f"status_style must be 'api' or 'docs', got {status_style!r}")
    low, high = run_duration
    if not 0 <= low <= high:
        raise ValueError(
            f"run_duration must be (min, max) with 0 <= min <= max, got {run_duration}"
        )
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate must be between 0 and 1, got {failure_rate!r}")
    if org_id is not None and (
        isinstance(org_id, bool) or not isinstance(org_id, int) or org_id < 1
    ):
        raise ValueError(f"org_id must be a positive int, got {org_id!r}")
    if max_runs is not None and (isinstance(max_runs, bool) or max_runs < 0):
        raise ValueError(f"max_runs must be a non-negative int or None, got {max_runs!r}")
    if token is not None and (not token.strip() or any(c in token for c in " \r\n\t")):
        raise ValueError("token must be a non-empty string without whitespace")


class Emulator:
    """The whole Codegen API, emulated in memory and served over HTTP on loopback.

    ``async with Emulator(time_scale=0.01) as emu:`` starts it on a free port of 127.0.0.1;
    point a client at ``emu.base_url`` with ``emu.token`` and ``emu.org_id``
    (``emu.client()`` does that for you). The default world is described in
    :mod:`codegen_async.emulator._seed`.

    Args:
        host: Interface to listen on.
        port: TCP port; 0 picks a free one.
        time_scale: Multiplies every duration the emulator keeps: rate-limit windows, run
            durations, Slack token expiry. 0.01 runs a minute of quota in 0.6 s.
        rate_limit: ``"fixed"`` windows (default), ``"sliding"`` log, or ``"off"``.
        seed: Seeds names, roles, tokens, and the duration and outcome of every run.
        status_style: ``"api"`` sends ``ACTIVE``/``COMPLETE``/``ERROR``/``CANCELLED``
            like the service; ``"docs"`` sends ``running``/``completed``/``failed``/...
        run_duration: (min, max) seconds, before scaling, a run takes to finish.
        failure_rate: Share of runs that end ``failed`` (default 0: every run completes
            unless you ask for failures here, with :meth:`finish_run` or with a fault).
        token: The API token of the organization's admin; default: derived from the seed.
        org_id: The organization's id (default 1); ``org_id + 1`` is a second organization
            the user belongs to, ``org_id + 2`` one they do not.
        max_runs: Runs the plan allows; the next creating call answers 402. None: no limit.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        rate_limit: RateLimitMode = "fixed",
        seed: int = 0,
        status_style: StatusStyle = "api",
        run_duration: tuple[float, float] = (5.0, 30.0),
        failure_rate: float = 0.0,
        token: str | None = None,
        org_id: int | None = None,
        max_runs: int | None = None,
    ) -> None:
        _check_settings(
            port,
            time_scale,
            rate_limit,
            status_style,
            run_duration,
            failure_rate,
            org_id,
            max_runs,
            token,
        )
        self.host = host
        self.port = port
        self.time_scale = float(time_scale)
        config = EmulatorConfig(
            time_scale=self.time_scale,
            status_style=status_style,
            run_duration=(float(run_duration[0]), float(run_duration[1])),
            failure_rate=float(failure_rate),
            max_runs=max_runs,
        )
        self.state = EmulatorState(config, seed=seed)
        self.org_id: int = DEFAULT_ORG_ID if org_id is None else org_id
        self.token: str = seed_state(self.state, org_id=self.org_id, token=token)
        self._runtime = Runtime(self.state, rate_limit=rate_limit, time_scale=self.time_scale)
        self.app: web.Application = build_app(self._runtime)
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._started = False

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start serving; sets :attr:`base_url` (and :attr:`port` if it was 0)."""
        if self._started:
            raise RuntimeError("this emulator was already started; create a new one")
        self._started = True
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving and close every connection. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            # aiohttp cancels a handler that outlives the shutdown timeout without waiting
            # for it; wait here, so nothing of this emulator still runs once stop() returns.
            await self._runtime.drain()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._runner is not None

    def __repr__(self) -> str:
        where = self.base_url or "not started"
        return f"<Emulator {where} org_id={self.org_id} time_scale={self.time_scale:g}>"

    # --- the seeded world ----------------------------------------------------------------
    @property
    def user_id(self) -> int:
        """The id of the user :attr:`token` belongs to (an ``ADMIN`` of :attr:`org_id`)."""
        return self.state.primary_user_id

    @property
    def second_org_id(self) -> int:
        """Another organization the user belongs to (as ``MEMBER``); it has no repositories."""
        return self.state.secondary_org_id

    @property
    def foreign_org_id(self) -> int:
        """An organization the user does not belong to: every call on it is 403."""
        return self.state.foreign_org_id

    @property
    def foreign_token(self) -> str:
        """A valid token of a user of :attr:`foreign_org_id` (not a member of :attr:`org_id`)."""
        return self.state.foreign_token

    def add_token(self, user_id: int | None = None) -> str:
        """A new API token for ``user_id`` (default: :attr:`user_id`); it has its own quotas."""
        return self.state.add_token(self.user_id if user_id is None else user_id)

    def client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Arguments for ``AsyncAgent(...)`` or ``codegen_sync.Agent(...)`` aimed at this
        emulator, with client-side quotas scaled like the server's."""
        kwargs: dict[str, Any] = {
            "token": self.token,
            "org_id": self.org_id,
            "base_url": self.base_url,
            "rate_limits": RateLimits.documented(scale=self.time_scale),
        }
        kwargs.update(overrides)
        return kwargs

    def client_env(self) -> dict[str, str]:
        """The ``CODEGEN_*`` environment variables that point a client built with no
        arguments (``Agent()``, ``codegen-api``) at this emulator, quotas and poll
        intervals scaled like the server's (``CODEGEN_RATE_LIMIT_SCALE``): the same
        settings as :meth:`client_kwargs`."""
        if not self.base_url:
            raise RuntimeError("start the emulator before asking where it is")
        return {
            "CODEGEN_API_TOKEN": self.token,
            "CODEGEN_ORG_ID": str(self.org_id),
            "CODEGEN_API_BASE_URL": self.base_url,
            "CODEGEN_RATE_LIMIT_SCALE": repr(self.time_scale),
        }

    def client(self, **overrides: Any) -> AsyncAgent:
        """An ``AsyncAgent`` for this emulator (close it, or use ``async with``)."""
        if not self.base_url:
            raise RuntimeError("start the emulator before creating a client")
        return AsyncAgent(**self.client_kwargs(**overrides))

    # --- test controls -------------------------------------------------------------------
    def inject_fault(
        self,
        operation: str,
        kind: FaultKind,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: float | str | None = None,
        delay: float | None = None,
    ) -> None:
        """Make the next ``count`` requests of ``operation`` misbehave.

        Args:
            operation: A name from ``ENDPOINTS`` (``"get_run"``, ``"run"``, ...) or ``"*"``.
            kind: ``"status"``, ``"hang"``, ``"drop_before_action"``,
                ``"drop_after_action"``, ``"truncate"``, ``"non_json"``, ``"html"`` or
                ``"wrong_shape"`` (see :mod:`codegen_async.emulator._faults`).
            count: How many requests it affects.
            status: The status of ``"status"`` (default 500) and ``"html"`` (default 502).
            retry_after: ``Retry-After`` for ``"status"``: seconds, or an HTTP-date string.
            delay: Seconds a ``"hang"`` waits before answering (default 60; not scaled).

        Faults come before authentication and quotas, and do not count against them
        (``drop_after_action``, ``truncate`` and ``wrong_shape`` act first, as a real
        request would). Note that aiohttp clients resend an idempotent request (GET, PUT)
        once when the server drops the connection, so a single dropped read goes unseen;
        inject ``count=2`` to surface the error.

        Raises:
            ValueError: unknown operation or kind, or a bad count or status.
        """
        inject_fault(
            self._runtime,
            operation,
            kind,
            count=count,
            status=status,
            retry_after=retry_after,
            delay=delay,
        )

    def clear_faults(self, operation: str | None = None) -> None:
        """Forget pending faults: of one operation, or all of them."""
        self._runtime.faults.clear(operation)

    def stats(self) -> dict[str, Any]:
        """What the emulator saw and answered (the JSON of ``GET /_emulator/stats``).

        Keys include ``requests`` (per route template, e.g.
        ``"GET /v1/organizations/{org_id}/agent/run/{agent_run_id}"``), ``responses`` (per
        status code, as strings), ``rate_limited`` (429s sent), ``runs_created`` (total) and
        ``runs_created_by_operation``, ``max_in_flight``, ``runs`` (by current status),
        ``dropped_connections`` and ``faults_triggered``.
        """
        return self._runtime.stats_snapshot()

    def reset_stats(self) -> None:
        """Zero the counters of :meth:`stats` (state and quotas are kept)."""
        self._runtime.reset_stats()

    def reset_rate_limits(self) -> None:
        """Forget every server-side quota counter, as if no request had been made."""
        self._runtime.limiter.reset()

    def set_extra_fields(self, fields: Mapping[str, Any] | None) -> None:
        """Answer like a newer API: add ``fields`` to every model object of every answer.

        ``None`` or ``{}`` turns it off. Over HTTP: ``PUT /_emulator/extra-fields`` with
        ``{"fields": {...}}``, ``DELETE`` to stop. The SDK keeps such fields in each
        model's ``model_extra``.
        """
        self._runtime.extra_fields = dict(fields or {})

    def finish_run(
        self, agent_run_id: int, status: str = "completed", result: str | None = None
    ) -> None:
        """End a run now with ``status`` (any spelling; ``"paused"`` pauses it).

        Raises:
            KeyError: no such run.
            ValueError: a status that is not completed, failed, cancelled or paused.
        """
        self.state.finish_run(agent_run_id, status, result)

    def run_finished_at(self, agent_run_id: int) -> float | None:
        """The ``time.time()`` at which the run became terminal, or ``None`` if it has not.

        Raises:
            KeyError: no such run.
        """
        return self.state.find_run(agent_run_id).finished_at(time.time())

    def run_info(self, agent_run_id: int) -> dict[str, Any]:
        """A run's internal state (the JSON of ``GET /_emulator/runs/{agent_run_id}``)."""
        return self.state.run_info(self.state.find_run(agent_run_id), time.time())

    def connect_slack(self, token: str) -> dict[str, Any]:
        """Play the Slack bot receiving ``Connect my account: {token}``.

        Returns ``{"connected": True, "user_id": ..., "org_id": ...}`` the first time within
        the token's (scaled) ten minutes, else ``{"connected": False, "reason": ...}``.
        """
        return self.state.connect_slack(token, time.time())

    def info(self) -> dict[str, Any]:
        """The ids of the seeded world (the JSON of ``GET /_emulator/info``)."""
        return self._runtime.info()
