"""The run poller: one per client, watching every run that any caller is waiting on.

``wait_for_run``, ``watch_run``, ``wait_for_runs`` and ``as_completed`` do not poll on their
own. They subscribe to the client's :class:`RunPoller`, which keeps one record per run and
two workers, one per route:

* the **list worker** reads pages of ``GET /v1/organizations/{org_id}/agent/runs`` (100
  runs a page, newest first, filtered by the token's user), each page chosen to hold as many
  runs due for a poll as possible;
* the **get worker** calls ``get_run`` for runs a page would not cover cheaply: a lone run,
  a run far down the list, a run missing from the list, or the first poll of a single wait.

Each worker spends at most ``share`` of its route's quota (``RateLimits`` of the client,
else the documented one), evenly paced, so the rest of the quota stays free for the
caller's own calls; every request still goes through the client's rate limiter too. The
decisions themselves (backoff, positions, which page) are pure functions in
``_plan``. The poller runs while somebody waits and stops when the last wait ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from .._endpoints import Quota
from ..errors import ClientClosedError, CodegenError
from ..models import AgentRun
from ._plan import (
    PAGE_SIZE,
    Candidate,
    Plan,
    PollPolicy,
    Window,
    classify_error,
    page_covers,
    plan_round,
)
from ._source import RunPage, RunSource
from ._subscription import DEFAULT_POLL_SHARE, MinShare, RunEvent, Subscription
from ._tracking import OrgLists, TrackedRun

__all__ = [
    "PollPacer",
    "RunPoller",
    "full_sweep_seconds",
    "quota_rate",
    "sleep",
]

log = logging.getLogger("codegen_async.polling")

MAX_IN_FLIGHT: Final = 8
"""Requests one worker keeps in flight at once (pacing, not this, bounds the rate)."""

REPLAN_COST_FACTOR: Final = 3.0
"""A plan that still holds work is reused until this many times its computing time has
passed. Planning is O(n log n) in the runs watched (tens of milliseconds for 10,000), and
replanning at every answer kept the event loop busy with it; this keeps planning to about a
quarter of the loop's time while the last plan still has requests to send."""

Route = Literal["list", "get"]
_OPERATION: Final[dict[Route, str]] = {"list": "list_runs", "get": "get_run"}

SleepFn = Callable[[float], Awaitable[Any]]
ClockFn = Callable[[], float]
Job = tuple[int, Window | int]  # (org_id, a list page or one run id)


async def sleep(seconds: float) -> None:
    """The poller's sleep; tests may replace it (``monkeypatch.setattr``)."""
    await asyncio.sleep(seconds)


class PollPacer:
    """Evenly spaced grants: one every ``interval`` seconds (the poller's own budget)."""

    def __init__(self, clock: ClockFn, sleep_fn: SleepFn) -> None:
        self.interval = 0.0
        self._clock = clock
        self._sleep = sleep_fn
        self._next = 0.0

    async def acquire(self) -> None:
        now = self._clock()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)


class RunPoller:
    """Polls every run its subscribers wait on, within a share of the quota.

    Args:
        source: Where runs come from (:class:`ClientRunSource` over a client).
        clock: Monotonic seconds; default the running loop's clock.
        sleep: Coroutine function to sleep with; default :func:`sleep` of this module.
    """

    def __init__(
        self,
        source: RunSource,
        *,
        clock: ClockFn | None = None,
        sleep: SleepFn | None = None,
    ) -> None:
        self._source = source
        self._clock_fn = clock
        self._sleep_fn = sleep
        self._tracked: dict[tuple[int, int], TrackedRun] = {}
        self._orgs: dict[int, OrgLists] = {}
        self._shares = MinShare()
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._wakes: dict[Route, asyncio.Event] = {}
        self._pacers: dict[Route, PollPacer] = {
            route: PollPacer(self._now, self._sleep) for route in ("list", "get")
        }
        self._version = 0
        self._plan_cache: tuple[int, float, dict[int, Plan]] | None = None
        self._replan_at = 0.0  # time.perf_counter() before which a stale plan may serve
        self._user_lock = asyncio.Lock()
        self._user_id: int | None = None
        self._user_known = False
        self._closed = False

    # --- clock and sleep (injectable for tests) ------------------------------------------
    def _now(self) -> float:
        if self._clock_fn is not None:
            return self._clock_fn()
        return asyncio.get_running_loop().time()

    async def _sleep(self, seconds: float) -> None:
        fn = self._sleep_fn if self._sleep_fn is not None else sleep
        await fn(max(seconds, 0.0))

    # --- subscriptions ---------------------------------------------------------------
    @property
    def source(self) -> RunSource:
        """Where this poller's runs come from."""
        return self._source

    @property
    def tracked(self) -> int:
        """How many runs are being polled."""
        return len(self._tracked)

    @property
    def running(self) -> bool:
        """Whether the poller's task is alive."""
        return self._task is not None and not self._task.done()

    def subscribe(
        self,
        org_id: int,
        run_ids: Iterable[int],
        *,
        poll_interval: float | None = None,
        share: float = DEFAULT_POLL_SHARE,
        sink: Callable[[RunEvent], None] | None = None,
    ) -> Subscription:
        """Start watching runs; their status changes are delivered to the subscription.

        A run already watched for another caller is shared, and its last known state is
        delivered at once. Costs O(number of runs), whatever else is being watched.
        ``sink`` makes the subscription a relay: each event is handed to it at once.
        """
        if self._closed:
            raise ClientClosedError("this client is closed; create a new one")
        sub = Subscription(org_id, run_ids, poll_interval, share, sink)
        now = self._now()
        if org_id not in self._orgs:
            self._orgs[org_id] = OrgLists(org_id)
        for run_id in sub.run_ids:
            key = (org_id, run_id)
            tracked = self._tracked.get(key)
            if tracked is None:
                tracked = self._tracked[key] = TrackedRun(org_id, run_id, next_due=now)
            elif tracked.last is not None:
                sub.deliver(RunEvent(run_id, run=tracked.last))
            if poll_interval is not None and tracked.last is not None:
                tracked.poll_by(now + poll_interval)
            tracked.subs.append(sub)
        sub.pending = len(sub.run_ids)
        if sub.pending:
            self._shares.add(share)
        self._configure()
        self._ensure_running()
        self._poke()
        return sub

    async def release(self, sub: Subscription) -> None:
        """Stop watching a subscription's runs; stops the poller when nobody waits."""
        sub.close()
        if sub.pending:
            for run_id in sub.run_ids:
                key = (sub.org_id, run_id)
                tracked = self._tracked.get(key)
                if tracked is not None:
                    with contextlib.suppress(ValueError):  # a finished run's successor
                        tracked.subs.remove(sub)
                    if not tracked.subs:
                        del self._tracked[key]
            self._deactivate(sub)
            if self._tracked:
                self._configure()  # the share may have changed; plans are rebuilt
                return
        elif self._tracked:
            return  # its runs had all finished: nothing tracked changed, keep the plan
        await self._stop()

    async def aclose(self) -> None:
        """End every wait with an error and stop polling (the client is closing)."""
        self._closed = True
        if self._tracked:
            self._fail_all(ClientClosedError("the client was closed while waiting for agent runs"))
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            self._stopping.add(task)
        pending = [t for t in self._stopping if not t.done()]
        if pending:
            await asyncio.wait(pending)
        self._stopping.clear()

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._main(), name="codegen-async run poller"
            )

    def _poke(self) -> None:
        self._version += 1
        for event in self._wakes.values():
            event.set()

    def _deactivate(self, sub: Subscription) -> None:
        """The subscription has no run left to poll: its share no longer counts."""
        if sub.pending:
            sub.pending = 0
            self._shares.remove(sub.share)

    def _share(self) -> float:
        return self._shares.smallest(DEFAULT_POLL_SHARE)

    def _rate(self, route: Route) -> float:
        return quota_rate(self._source.quota(_OPERATION[route]), self._share())

    def _configure(self) -> None:
        self._version += 1
        for route in ("list", "get"):
            self._pacers[route].interval = 1.0 / self._rate(route)

    def _policy(self, tracked: TrackedRun) -> PollPolicy:
        fixed = [s.poll_interval for s in tracked.subs if s.poll_interval is not None]
        window = self._source.quota("get_run").window
        return PollPolicy.for_window(window, fixed=min(fixed) if fixed else None)

    # --- delivering to waiters -----------------------------------------------------------
    def _observe(self, tracked: TrackedRun, run: AgentRun, now: float) -> None:
        changed = tracked.observed(run)
        if run.is_terminal:
            self._finish(tracked, RunEvent(tracked.run_id, run=run))
            return
        tracked.poll_later(now, self._policy(tracked))
        if changed:
            event = RunEvent(tracked.run_id, run=run)
            for sub in tracked.subs:
                sub.deliver(event)

    def _finish(self, tracked: TrackedRun, event: RunEvent) -> None:
        key = (tracked.org_id, tracked.run_id)
        if self._tracked.get(key) is tracked:
            del self._tracked[key]
        share = self._share()
        for sub in tracked.subs:
            sub.deliver(event)
            if sub.pending > 0:
                sub.pending -= 1
                if not sub.pending:
                    self._shares.remove(sub.share)
        tracked.subs.clear()
        if self._share() != share:
            self._configure()

    def _fail(self, tracked: TrackedRun, error: BaseException) -> None:
        log.debug("wait on agent run %d ends: %r", tracked.run_id, error)
        self._finish(tracked, RunEvent(tracked.run_id, error=error))

    def _fail_all(self, error: BaseException) -> None:
        subs = {id(s): s for t in self._tracked.values() for s in t.subs}
        self._tracked.clear()
        event = RunEvent(-1, error=error, fatal=True)
        for sub in subs.values():
            sub.deliver(event)
            self._deactivate(sub)

    # --- the main loop ------------------------------------------------------------------
    async def _main(self) -> None:
        me = asyncio.current_task()
        self._wakes = {"list": asyncio.Event(), "get": asyncio.Event()}
        self._configure()
        sends: set[asyncio.Task[None]] = set()
        try:
            # Re-check after the workers end: a wait may have subscribed meanwhile.
            while self._tracked:
                await asyncio.gather(self._worker("list", sends), self._worker("get", sends))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end the waits, never leave them hanging
            log.exception("the run poller failed")
            self._fail_all(exc)
        finally:
            if self._task is me:  # from here on, a new wait starts a new task
                self._task = None
            for task in sends:
                task.cancel()
            if sends:
                await asyncio.gather(*sends, return_exceptions=True)

    async def _resolve_user(self) -> None:
        """Learn the token's user once: the list is filtered by it to hold fewer runs."""
        if self._user_known:
            return
        async with self._user_lock:
            if not self._user_known:
                await self._lookup_user()

    async def _lookup_user(self) -> None:
        try:
            self._user_id = await self._source.current_user_id()
        except CodegenError as exc:
            if classify_error(exc) == "fatal":
                raise
            log.info("cannot read the current user (%s); listing runs unfiltered", exc)
            self._user_id = None
        self._user_known = True

    async def _worker(self, route: Route, sends: set[asyncio.Task[None]]) -> None:
        wake = self._wakes[route]
        pacer = self._pacers[route]
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        while self._tracked:
            wake.clear()
            since = self._now()  # read before the plan's clock: see _idle
            if self._pick(route) is None:
                await self._idle(route, since)
                continue
            await slots.acquire()
            try:
                await pacer.acquire()
                job = self._pick(route)  # the state may have moved while waiting
            except BaseException:
                slots.release()
                raise
            if job is None:
                slots.release()
                continue
            self._claim(job, True)
            task = asyncio.get_running_loop().create_task(self._send(route, job))
            sends.add(task)
            task.add_done_callback(sends.discard)
            task.add_done_callback(lambda _task: slots.release())

    async def _idle(self, route: Route, since: float) -> None:
        """Wait until a run falls due or the state changes (a wait, an answer).

        ``since`` is a time read before the plan that had nothing to send: a run not due
        then may be due by now (a loaded machine can deschedule the process between the
        two). Measured from ``now`` instead, such a run was neither planned nor waited
        for, and with no request in flight to wake the worker, every wait hung for good.
        """
        due = min((t.next_due for t in self._tracked.values() if t.next_due > since), default=None)
        delay = None if due is None else due - self._now()
        wake = self._wakes[route]
        if wake.is_set():
            return
        waiter = asyncio.ensure_future(wake.wait())
        tasks: set[asyncio.Future[Any]] = {waiter}
        if delay is not None:
            tasks.add(asyncio.ensure_future(self._sleep(delay)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()

    # --- choosing the next request -------------------------------------------------------
    def _pick(self, route: Route) -> Job | None:
        """The most useful request for ``route`` now: ``(org_id, Window)`` or a run id."""
        best: Job | None = None
        best_urgency = 0.0
        for org_id, plan in self._plans(route).items():
            if route == "list" and plan.windows:
                window = max(plan.windows, key=lambda w: (w.urgency, w.due, -w.skip))
                if best is None or window.urgency > best_urgency:
                    best, best_urgency = (org_id, window), window.urgency
            elif route == "get" and plan.singles and best is None:
                best = (org_id, plan.singles[0])
        return best

    def _plans(self, route: Route) -> dict[int, Plan]:
        """This moment's plan per organization, recomputed only when something changed.

        A plan that is out of date but still holds a request for ``route`` is reused for
        a while (see :data:`REPLAN_COST_FACTOR`): its requests were the most useful ones a
        moment ago, and runs that fell due since are planned next time.
        """
        now = self._now()
        cached = self._plan_cache
        if cached is not None:
            version, until, cached_plans = cached
            if version == self._version and now < until:
                return cached_plans
            if time.perf_counter() < self._replan_at and _has_work(cached_plans, route):
                return cached_plans
        started = time.perf_counter()
        list_rate, get_rate = self._rate("list"), self._rate("get")
        plans: dict[int, Plan] = {}
        valid_until = math.inf
        by_org: dict[int, list[TrackedRun]] = {}
        for tracked in self._tracked.values():
            if tracked.in_flight:
                continue
            if tracked.next_due > now:
                valid_until = min(valid_until, tracked.next_due)
            by_org.setdefault(tracked.org_id, []).append(tracked)
        for org_id, runs in by_org.items():
            plan = self._plan(self._orgs[org_id], runs, now, list_rate, get_rate)
            if plan is not None:
                plans[org_id] = plan
        self._plan_cache = (self._version, valid_until, plans)
        finished = time.perf_counter()
        self._replan_at = finished + REPLAN_COST_FACTOR * (finished - started)
        return plans

    def _plan(
        self, org: OrgLists, runs: list[TrackedRun], now: float, list_rate: float, get_rate: float
    ) -> Plan | None:
        runs.sort(key=lambda t: t.next_due)
        if runs[0].next_due > now:
            return None
        candidates = []
        lists = org.lists
        use_list = org.use_list
        for tracked in runs:
            alone = tracked.fetch_alone(use_list)
            position = None if alone else lists.position(tracked.run_id)
            overdue = now - tracked.next_due
            candidates.append(Candidate(tracked.run_id, position, overdue >= 0, max(overdue, 0.0)))
        return plan_round(candidates, list_rate=list_rate, get_rate=get_rate, page_size=PAGE_SIZE)

    def _claim(self, job: Job, flag: bool) -> None:
        """Mark a request's runs in flight (``flag``) or back from it."""
        org_id, what = job
        ids = what.run_ids if isinstance(what, Window) else (what,)
        for run_id in ids:
            tracked = self._tracked.get((org_id, run_id))
            if tracked is not None:
                tracked.in_flight = flag
        if not flag:
            self._version += 1
            return
        # Taking one request out of the cached plan is what planning again without its
        # runs would give (every run is in one request at most), at no cost. The job came
        # from the cached plan, up to date or not; either way it must not be sent twice.
        cached = self._plan_cache
        plan = cached[2].get(org_id) if cached is not None else None
        if cached is None or plan is None:
            self._version += 1
            return
        if isinstance(what, Window):
            plan = attrs.evolve(plan, windows=tuple(w for w in plan.windows if w is not what))
        else:
            plan = attrs.evolve(plan, singles=tuple(r for r in plan.singles if r != what))
        cached[2][org_id] = plan

    # --- sending and reading the answers ----------------------------------------------
    async def _send(self, route: Route, job: Job) -> None:
        org_id, what = job
        try:
            if isinstance(what, Window):
                await self._read_window(org_id, what)
            else:
                await self._read_one(org_id, what)
        except CodegenError as exc:  # only fatal kinds get here
            self._fail_all(exc)
        except Exception as exc:  # a bug must end the waits, never leave them hanging
            log.exception("the run poller failed")
            self._fail_all(exc)
        finally:
            self._claim(job, False)
            self._poke()

    async def _read_one(self, org_id: int, run_id: int) -> None:
        key = (org_id, run_id)
        try:
            run = await self._source.get_run(org_id, run_id)
        except CodegenError as exc:
            tracked = self._tracked.get(key)
            if tracked is None:
                return
            kind = classify_error(exc)
            if kind == "fatal":
                raise
            if kind == "run":
                self._fail(tracked, exc)
                return
            if tracked.poll_failed(self._now(), self._policy(tracked)):
                self._fail(tracked, exc)
            return
        tracked = self._tracked.get(key)
        if tracked is None:
            return
        org = self._orgs[org_id]
        # Absent from the user's list yet it exists: someone else started it.
        if tracked.read_alone() and self._user_id is not None and org.found_outside_filter():
            self._drop_user_filter(org)
        self._observe(tracked, run, self._now())

    async def _read_window(self, org_id: int, window: Window) -> None:
        org = self._orgs[org_id]
        await self._resolve_user()
        user_id = self._user_id if org.filter_user else None
        try:
            page = await self._source.list_page(org_id, user_id, window.skip, window.limit)
        except CodegenError as exc:
            if classify_error(exc) == "fatal":
                raise
            self._page_failed(org, window, exc)
            return
        self._page_read(org, window, page)

    def _page_failed(self, org: OrgLists, window: Window, exc: CodegenError) -> None:
        read_alone = org.page_failed(broken=classify_error(exc) == "run")
        now = self._now()
        for run_id in window.run_ids:
            tracked = self._tracked.get((org.org_id, run_id))
            if tracked is not None:
                tracked.page_failed(read_alone=read_alone, now=now, policy=self._policy(tracked))
        log.debug("list page at %d failed (%r)", window.skip, exc)

    def _page_read(self, org: OrgLists, window: Window, page: RunPage) -> None:
        org.page_read(window.skip, page.total, page.ids)
        now = self._now()
        for run_id in page.ids:
            tracked = None if run_id is None else self._tracked.get((org.org_id, run_id))
            if tracked is None:
                continue
            tracked.seen_on_page()
            error = page.errors.get(tracked.run_id)
            if error is not None:
                self._fail(tracked, error)
            elif tracked.run_id in page.runs:
                self._observe(tracked, page.runs[tracked.run_id], now)
        seen = {i for i in page.ids if i is not None}
        for run_id in window.run_ids:
            tracked = self._tracked.get((org.org_id, run_id))
            if tracked is None or run_id in seen:
                continue
            tracked.missed_on_page(
                proved_absent=page_covers(run_id, skip=window.skip, ids=page.ids, total=page.total),
                was_anchored=org.lists.knows(run_id),
            )
            org.lists.forget(run_id)

    def _drop_user_filter(self, org: OrgLists) -> None:
        log.debug("org %d: waited-on runs are not the user's; listing every run", org.org_id)
        for tracked in self._tracked.values():
            if tracked.org_id == org.org_id:
                tracked.list_changed()


def _has_work(plans: Mapping[int, Plan], route: Route) -> bool:
    if route == "list":
        return any(plan.windows for plan in plans.values())
    return any(plan.singles for plan in plans.values())


def quota_rate(quota: Quota, share: float) -> float:
    """Requests a second that ``share`` of ``quota`` allows."""
    return quota.limit / quota.window * share


def full_sweep_seconds(pending: int, quota: Quota) -> float:
    """The fastest full sweep of ``pending`` runs the quota allows: one page per 100 runs."""
    return math.ceil(pending / PAGE_SIZE) / quota_rate(quota, 1.0)
