"""Waiting on agent runs: one (``wait_for_run``, ``watch_run``) or many at once.

These are the bodies of ``AsyncAgent``'s polling methods. None of them polls by itself:
each subscribes to the client's one :class:`~codegen_async._poller.RunPoller` for the runs it
waits on, reads the status changes the poller delivers, and keeps its own deadline. So a
thousand runs, or ten concurrent waits, cost the requests of one poller, never one loop per
run.
"""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType
from typing import Any

from ._poller import DEFAULT_POLL_SHARE, RunEvent, RunPoller, Subscription
from ._validation import check_id
from .errors import CodegenError, RunWaitError, RunWaitTimeoutError, WaitTimeoutError
from .models import AgentRun, RunStatus

__all__ = [
    "OnUpdate",
    "as_completed",
    "check_wait_args",
    "wait_for_run",
    "wait_for_runs",
    "watch_run",
]

OnUpdate = Callable[[AgentRun], Any]
"""Called with a run each time its status changes; may be a coroutine function."""


def _positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {type(value).__name__}")
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


def check_wait_args(
    timeout: object, poll_interval: object, poll_share: object = DEFAULT_POLL_SHARE
) -> tuple[float | None, float | None, float]:
    """Check the common arguments of the wait methods (before any request is made)."""
    share = _positive("poll_share", poll_share)
    if share is None or share > 1:
        raise ValueError(f"poll_share must be in (0, 1], got {poll_share!r}")
    return _positive("timeout", timeout), _positive("poll_interval", poll_interval), share


def _run_ids(agent_run_ids: Iterable[int]) -> list[int]:
    if isinstance(agent_run_ids, (str, bytes)) or not isinstance(agent_run_ids, Iterable):
        raise TypeError(
            f"agent_run_ids must be an iterable of ints, got {type(agent_run_ids).__name__}"
        )
    return list(dict.fromkeys(check_id("agent_run_ids[]", i) for i in agent_run_ids))


class _Wait:
    """A subscription with a deadline: ``async with``, then :meth:`next` until done."""

    def __init__(
        self,
        poller: RunPoller,
        org_id: int,
        run_ids: list[int],
        *,
        timeout: float | None,
        poll_interval: float | None,
        share: float,
    ) -> None:
        self._poller = poller
        self._args = (org_id, run_ids, poll_interval, share)
        self._timeout = timeout
        self._deadline: float | None = None
        self._sub: Subscription | None = None

    async def __aenter__(self) -> _Wait:
        org_id, run_ids, poll_interval, share = self._args
        loop = asyncio.get_running_loop()
        if self._timeout is not None:
            self._deadline = loop.time() + self._timeout
        self._sub = self._poller.subscribe(
            org_id, run_ids, poll_interval=poll_interval, share=share
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            await self._poller.release(sub)

    async def next(self) -> RunEvent | None:
        """The next event, or ``None`` once the deadline has passed."""
        assert self._sub is not None
        queue = self._sub.queue
        if not queue.empty():
            return queue.get_nowait()
        if self._deadline is None:
            return await queue.get()
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return None
        try:
            return await asyncio.wait_for(queue.get(), remaining)
        except asyncio.TimeoutError:
            return None if queue.empty() else queue.get_nowait()


def _raise_error(event: RunEvent) -> None:
    if event.error is not None:
        raise event.error


async def watch_run(
    poller: RunPoller,
    org_id: int,
    agent_run_id: int,
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> AsyncGenerator[AgentRun, None]:
    """Yield the run each time its status changes; stop after the terminal one."""
    run_id = check_id("agent_run_id", agent_run_id)
    timeout, poll_interval, share = check_wait_args(timeout, poll_interval)
    last: RunStatus | None = None
    async with _Wait(
        poller, org_id, [run_id], timeout=timeout, poll_interval=poll_interval, share=share
    ) as wait:
        while True:
            event = await wait.next()
            if event is None:
                assert timeout is not None
                raise WaitTimeoutError(run_id, timeout, last)
            _raise_error(event)
            run = event.run
            if run is None:  # pragma: no cover - an event holds a run or an error
                continue
            last = run.status
            yield run
            if run.is_terminal:
                return


async def wait_for_run(
    poller: RunPoller,
    org_id: int,
    agent_run_id: int,
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> AgentRun:
    """Wait until the run is terminal and return it (see ``AsyncAgent.wait_for_run``)."""
    last: AgentRun | None = None
    stream = watch_run(poller, org_id, agent_run_id, timeout=timeout, poll_interval=poll_interval)
    try:
        async for run in stream:
            last = run
    finally:
        await stream.aclose()
    assert last is not None, "watch_run ends with the terminal run or raises"
    return last


class _Progress:
    """A tqdm bar (``tqdm.auto``: the widget in notebooks) counting finished runs."""

    def __init__(self, total: int) -> None:
        self._bar: Any = None
        self._counts: dict[str, int] = {}
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn(
                "progress=True needs tqdm (pip install 'codegen-async[progress]'); "
                "waiting without a progress bar",
                RuntimeWarning,
                stacklevel=4,
            )
            return
        self._bar = tqdm(total=total, desc="agent runs", unit="run", dynamic_ncols=True)

    def done(self, outcome: str) -> None:
        if self._bar is None:
            return
        self._counts[outcome] = self._counts.get(outcome, 0) + 1
        self._bar.set_postfix(self._counts, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


async def as_completed(
    poller: RunPoller,
    org_id: int,
    agent_run_ids: Iterable[int],
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
    on_update: OnUpdate | None = None,
    progress: bool = False,
    poll_share: float = DEFAULT_POLL_SHARE,
) -> AsyncGenerator[AgentRun, None]:
    """Yield each run as it finishes (see ``AsyncAgent.as_completed``)."""
    run_ids = _run_ids(agent_run_ids)
    timeout, poll_interval, share = check_wait_args(timeout, poll_interval, poll_share)
    if on_update is not None and not callable(on_update):
        raise TypeError("on_update must be callable")
    if not run_ids:
        return
    finished: dict[int, AgentRun] = {}
    errors: dict[int, CodegenError] = {}
    last: dict[int, RunStatus | None] = {}
    pending = set(run_ids)
    bar = _Progress(len(run_ids)) if progress else None
    try:
        async with _Wait(
            poller, org_id, run_ids, timeout=timeout, poll_interval=poll_interval, share=share
        ) as wait:
            while pending:
                event = await wait.next()
                if event is None:
                    assert timeout is not None
                    for run_id in run_ids:
                        if run_id in pending:
                            errors[run_id] = WaitTimeoutError(run_id, timeout, last.get(run_id))
                    raise RunWaitTimeoutError(
                        _ordered(errors, run_ids), _ordered(finished, run_ids)
                    )
                if event.fatal:
                    _raise_error(event)
                run_id = event.run_id
                if run_id not in pending:
                    continue
                if event.error is not None:
                    if not isinstance(event.error, CodegenError):
                        raise event.error
                    errors[run_id] = event.error
                    pending.discard(run_id)
                    if bar is not None:
                        bar.done("error")
                    continue
                run = event.run
                if run is None:  # pragma: no cover - an event holds a run or an error
                    continue
                if run_id not in last or last[run_id] != run.status:
                    last[run_id] = run.status
                    if on_update is not None:
                        outcome = on_update(run)
                        if inspect.isawaitable(outcome):
                            await outcome
                if run.is_terminal:
                    pending.discard(run_id)
                    finished[run_id] = run
                    if bar is not None:
                        bar.done(str(run.status))
                    yield run
    finally:
        if bar is not None:
            bar.close()
    if errors:
        raise RunWaitError(_ordered(errors, run_ids), _ordered(finished, run_ids))


async def wait_for_runs(
    poller: RunPoller,
    org_id: int,
    agent_run_ids: Iterable[int],
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
    on_update: OnUpdate | None = None,
    progress: bool = False,
    poll_share: float = DEFAULT_POLL_SHARE,
) -> dict[int, AgentRun]:
    """Wait until every run is terminal (see ``AsyncAgent.wait_for_runs``)."""
    run_ids = _run_ids(agent_run_ids)
    finished: dict[int, AgentRun] = {}
    stream = as_completed(
        poller,
        org_id,
        run_ids,
        timeout=timeout,
        poll_interval=poll_interval,
        on_update=on_update,
        progress=progress,
        poll_share=poll_share,
    )
    try:
        async for run in stream:
            finished[run.id] = run
    finally:
        await stream.aclose()
    return _ordered(finished, run_ids)


def _ordered(values: dict[int, Any], order: list[int]) -> dict[int, Any]:
    return {run_id: values[run_id] for run_id in order if run_id in values}
