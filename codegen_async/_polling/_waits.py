"""Waiting on agent runs: one (``wait_for_run``, ``watch_run``) or many at once.

These are the bodies of ``AsyncAgent``'s polling methods. None of them polls by itself:
each subscribes to a :class:`RunWatcher` (the client's one poller, ``_engine.RunPoller``, or
the fleet's) for the runs it waits on, reads the status changes the poller delivers, and
keeps its own deadline. So a thousand runs, or ten concurrent waits, cost the requests of
one poller, never one loop per run.

A wait is cheap to hold (10,000 concurrent ``wait_for_run`` calls are a use case): it is one
coroutine waiting on one future of its subscription, with no queue, task or async generator
of its own; a deadline is a timer handle on the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any, TypeGuard

from .._validation import check_id
from ..errors import CodegenError, RunWaitError, RunWaitTimeoutError, WaitTimeoutError
from ..models import AgentRun, FinishedRun, RunStatus
from ._subscription import DEFAULT_POLL_SHARE, RunEvent, RunWatcher

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


def is_finished(run: AgentRun) -> TypeGuard[FinishedRun]:
    """Whether ``run`` has finished; type checkers then know its ``status`` is set."""
    return run.is_terminal


def _positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {type(value).__name__}")
    if not 0 < value < math.inf:  # also refuses NaN; inf would never poll again
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
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


def _deadline(timeout: float | None) -> float | None:
    """The loop time at which a wait of ``timeout`` seconds starting now ends."""
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


def _raise_error(event: RunEvent) -> None:
    if event.error is not None:
        raise event.error.with_traceback(event.traceback)


def _run_of(
    event: RunEvent | None, run_id: int, timeout: float | None, last: RunStatus | None
) -> AgentRun | None:
    """The run an event of a single-run wait carries; raises its error or the timeout."""
    if event is None:
        assert timeout is not None, "only a wait with a deadline gets no event"
        raise WaitTimeoutError(run_id, timeout, last)
    _raise_error(event)
    return event.run


async def watch_run(
    poller: RunWatcher,
    org_id: int,
    agent_run_id: int,
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> AsyncGenerator[AgentRun, None]:
    """Yield the run each time its status changes; stop after the terminal one."""
    run_id = check_id("agent_run_id", agent_run_id)
    timeout, poll_interval, share = check_wait_args(timeout, poll_interval)
    deadline = _deadline(timeout)
    last: RunStatus | None = None
    sub = poller.subscribe(org_id, (run_id,), poll_interval=poll_interval, share=share)
    try:
        while True:
            run = _run_of(await sub.get(deadline), run_id, timeout, last)
            if run is None:  # pragma: no cover - an event holds a run or an error
                continue
            last = run.status
            yield run
            if run.is_terminal:
                return
    finally:
        await poller.release(sub)


async def wait_for_run(
    poller: RunWatcher,
    org_id: int,
    agent_run_id: int,
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> FinishedRun:
    """Wait until the run is terminal and return it (see ``AsyncAgent.wait_for_run``).

    The loop of :func:`watch_run` without its async generator, holding as little as it can
    while it waits, since many of these wait at once: not the run (the poller keeps the
    latest), only the spelling of its last status.
    """
    run_id = check_id("agent_run_id", agent_run_id)
    timeout, poll_interval, share = check_wait_args(timeout, poll_interval)
    deadline = _deadline(timeout)
    last: str | None = None  # RunStatus.raw of the last status seen
    sub = poller.subscribe(org_id, (run_id,), poll_interval=poll_interval, share=share)
    try:
        while True:
            event = await sub.get(deadline)
            if event is None:
                assert timeout is not None, "only a wait with a deadline gets no event"
                raise WaitTimeoutError(run_id, timeout, None if last is None else RunStatus(last))
            _raise_error(event)
            run = event.run
            if run is not None:
                if is_finished(run):
                    return run
                last = None if run.status is None else run.status.raw
            event = run = None  # not kept while waiting for the next one
    finally:
        await poller.release(sub)


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


class _Completion:
    """The bookkeeping of one :func:`as_completed`: runs pending, finished and failed."""

    def __init__(self, run_ids: list[int], on_update: OnUpdate | None, progress: bool) -> None:
        self.run_ids = run_ids
        self.pending = set(run_ids)
        self.finished: dict[int, FinishedRun] = {}
        self.errors: dict[int, CodegenError] = {}
        self._last: dict[int, RunStatus | None] = {}
        self._on_update = on_update
        self._bar = _Progress(len(run_ids)) if progress else None

    async def take(self, event: RunEvent) -> FinishedRun | None:
        """Account for one event; the run when it is one that just finished."""
        if event.fatal:
            _raise_error(event)
        run_id, run = event.run_id, event.run
        if run_id not in self.pending:
            return None
        if event.error is not None:
            self._failed(run_id, event)
            return None
        if run is None:  # pragma: no cover - an event holds a run or an error
            return None
        if run_id not in self._last or self._last[run_id] != run.status:
            self._last[run_id] = run.status
            await self._updated(run)
        if not is_finished(run):
            return None
        self.pending.discard(run_id)
        self.finished[run_id] = run
        self._count(str(run.status))
        return run

    def timed_out(self, timeout: float) -> RunWaitTimeoutError:
        """The error ending a wait whose deadline passed."""
        for run_id in self.run_ids:
            if run_id in self.pending:
                self.errors[run_id] = WaitTimeoutError(run_id, timeout, self._last.get(run_id))
        return RunWaitTimeoutError(self._ordered(self.errors), self._ordered(self.finished))

    def raise_errors(self) -> None:
        """Raise :class:`RunWaitError` if some waits ended with an error."""
        if self.errors:
            raise RunWaitError(self._ordered(self.errors), self._ordered(self.finished))

    def close(self) -> None:
        """Close the progress bar."""
        if self._bar is not None:
            self._bar.close()

    def _failed(self, run_id: int, event: RunEvent) -> None:
        if not isinstance(event.error, CodegenError):
            _raise_error(event)  # a bug or a closed client: it ends every wait
        assert isinstance(event.error, CodegenError)
        self.errors[run_id] = event.error
        self.pending.discard(run_id)
        self._count("error")

    async def _updated(self, run: AgentRun) -> None:
        if self._on_update is not None:
            outcome = self._on_update(run)
            if inspect.isawaitable(outcome):
                await outcome

    def _count(self, outcome: str) -> None:
        if self._bar is not None:
            self._bar.done(outcome)

    def _ordered(self, values: dict[int, Any]) -> dict[int, Any]:
        return _ordered(values, self.run_ids)


async def as_completed(
    poller: RunWatcher,
    org_id: int,
    agent_run_ids: Iterable[int],
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
    on_update: OnUpdate | None = None,
    progress: bool = False,
    poll_share: float = DEFAULT_POLL_SHARE,
) -> AsyncGenerator[FinishedRun, None]:
    """Yield each run as it finishes (see ``AsyncAgent.as_completed``)."""
    run_ids = _run_ids(agent_run_ids)
    timeout, poll_interval, share = check_wait_args(timeout, poll_interval, poll_share)
    if on_update is not None and not callable(on_update):
        raise TypeError("on_update must be callable")
    if not run_ids:
        return
    state = _Completion(run_ids, on_update, progress)
    deadline = _deadline(timeout)
    sub = None
    try:
        sub = poller.subscribe(org_id, run_ids, poll_interval=poll_interval, share=share)
        while state.pending:
            event = await sub.get(deadline)
            if event is None:
                assert timeout is not None, "only a wait with a deadline gets no event"
                raise state.timed_out(timeout)
            run = await state.take(event)
            if run is not None:
                yield run
    finally:
        if sub is not None:
            await poller.release(sub)
        state.close()
    state.raise_errors()


async def wait_for_runs(
    poller: RunWatcher,
    org_id: int,
    agent_run_ids: Iterable[int],
    *,
    timeout: float | None = None,
    poll_interval: float | None = None,
    on_update: OnUpdate | None = None,
    progress: bool = False,
    poll_share: float = DEFAULT_POLL_SHARE,
) -> dict[int, FinishedRun]:
    """Wait until every run is terminal (see ``AsyncAgent.wait_for_runs``)."""
    run_ids = _run_ids(agent_run_ids)
    finished: dict[int, FinishedRun] = {}
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
