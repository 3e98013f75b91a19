"""``EmulatorThread``: the emulator on a background thread, for blocking code and notebooks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from ._emulator import Emulator
from ._faults import FaultKind
from ._quota import RateLimitMode
from ._records import StatusStyle

__all__ = ["EmulatorThread"]

T = TypeVar("T")


class EmulatorThread:
    """The same server as :class:`Emulator`, on its own event loop in a daemon thread.

    Use it where there is no running event loop to serve from: blocking tests
    (``codegen_sync.Agent``), command-line tests, notebooks::

        with EmulatorThread(time_scale=0.01) as emu:
            agent = Agent(**emu.client_kwargs())

    Takes the same arguments as :class:`Emulator`. The control methods are thread-safe:
    they run on the emulator's loop and wait for it.
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
        self.emulator = Emulator(
            host=host,
            port=port,
            time_scale=time_scale,
            rate_limit=rate_limit,
            seed=seed,
            status_style=status_style,
            run_duration=run_duration,
            failure_rate=failure_rate,
            token=token,
            org_id=org_id,
            max_runs=max_runs,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop thread and the server; return once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("this emulator thread was already started")
        started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(started,), name="codegen-emulator", daemon=True
        )
        self._thread.start()
        try:
            started.result()
        except BaseException:
            self._thread.join()
            raise

    def _main(self, started: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self.emulator.start())
            except BaseException as exc:
                started.set_exception(exc)
                return
            self._loop = loop
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.emulator.stop())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def stop(self) -> None:
        """Stop the server and the thread. Safe to call twice."""
        loop, thread = self._loop, self._thread
        self._loop = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def __enter__(self) -> EmulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the emulator's loop (its state is not shared across threads)."""
        loop = self._loop
        if loop is None:
            return fn()  # not running: nothing else touches the state
        if threading.current_thread() is self._thread:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result()

    # --- the emulator's attributes and controls -----------------------------------------
    @property
    def base_url(self) -> str:
        return self.emulator.base_url

    @property
    def token(self) -> str:
        return self.emulator.token

    @property
    def org_id(self) -> int:
        return self.emulator.org_id

    @property
    def user_id(self) -> int:
        return self.emulator.user_id

    @property
    def time_scale(self) -> float:
        return self.emulator.time_scale

    def __repr__(self) -> str:
        return f"<EmulatorThread {self.emulator!r}>"

    def client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Arguments for ``codegen_sync.Agent(...)`` aimed at this emulator."""
        return self.emulator.client_kwargs(**overrides)

    def client_env(self) -> dict[str, str]:
        """See :meth:`Emulator.client_env`."""
        return self.emulator.client_env()

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
        """See :meth:`Emulator.inject_fault`."""
        self._call(
            lambda: self.emulator.inject_fault(
                operation, kind, count=count, status=status, retry_after=retry_after, delay=delay
            )
        )

    def clear_faults(self, operation: str | None = None) -> None:
        """See :meth:`Emulator.clear_faults`."""
        self._call(lambda: self.emulator.clear_faults(operation))

    def stats(self) -> dict[str, Any]:
        """See :meth:`Emulator.stats`."""
        return self._call(self.emulator.stats)

    def reset_stats(self) -> None:
        """See :meth:`Emulator.reset_stats`."""
        self._call(self.emulator.reset_stats)

    def reset_rate_limits(self) -> None:
        """See :meth:`Emulator.reset_rate_limits`."""
        self._call(self.emulator.reset_rate_limits)

    def set_extra_fields(self, fields: Mapping[str, Any] | None) -> None:
        """See :meth:`Emulator.set_extra_fields`."""
        self._call(lambda: self.emulator.set_extra_fields(fields))

    def finish_run(
        self, agent_run_id: int, status: str = "completed", result: str | None = None
    ) -> None:
        """See :meth:`Emulator.finish_run`."""
        self._call(lambda: self.emulator.finish_run(agent_run_id, status, result))

    def run_finished_at(self, agent_run_id: int) -> float | None:
        """See :meth:`Emulator.run_finished_at`."""
        return self._call(lambda: self.emulator.run_finished_at(agent_run_id))

    def run_info(self, agent_run_id: int) -> dict[str, Any]:
        """See :meth:`Emulator.run_info`."""
        return self._call(lambda: self.emulator.run_info(agent_run_id))

    def add_token(self, user_id: int | None = None) -> str:
        """See :meth:`Emulator.add_token`."""
        return self._call(lambda: self.emulator.add_token(user_id))

    def connect_slack(self, token: str) -> dict[str, Any]:
        """See :meth:`Emulator.connect_slack`."""
        return self._call(lambda: self.emulator.connect_slack(token))
