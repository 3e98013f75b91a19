"""The run poller and the wait functions, against an in-memory run service.

The fake service keeps the run list as the API does (newest first, ids growing, filter by
user) and finishes each run after it has been read a set number of times, so the outcome
does not depend on timing. Its quota is scaled down (60 requests per 0.3 s) to keep the
tests fast.
"""

from __future__ import annotations

import asyncio
import gc
import random
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from codegen_async import _polling
from codegen_async._endpoints import Quota
from codegen_async._polling import RunEvent, RunPage, RunPoller, Subscription, _engine
from codegen_async._polling._plan import Window
from codegen_async._polling._subscription import MinShare
from codegen_async._polling._tracking import TrackedRun
from codegen_async.errors import (
    APIResponseValidationError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    RunWaitError,
    RunWaitTimeoutError,
    WaitTimeoutError,
)
from codegen_async.models import AgentRun, RunStatus

ORG = 5
ME = 7
OTHER = 8
FAST = Quota(60, 0.3)  # the standard quota at a hundredth of its window


class FakeRuns:
    """An in-memory run service implementing the poller's ``RunSource``."""

    def __init__(self, *, quota: Quota = FAST) -> None:
        self._quota = quota
        self.order: list[int] = []  # creation order, oldest first
        self.user: dict[int, int] = {}
        self.states: dict[int, list[str]] = {}  # statuses still to show, last one sticks
        self.malformed: set[int] = set()
        self.calls: Counter[str] = Counter()
        self.list_users: list[int | None] = []
        self.fail_get: list[Exception] = []
        self.fail_list: list[Exception] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._next_id = 1000

    def add(
        self, count: int, *, user: int = ME, states: Iterable[str] = ("ACTIVE", "COMPLETE")
    ) -> list[int]:
        ids = []
        for _ in range(count):
            run_id = self._next_id
            self._next_id += 1
            self.order.append(run_id)
            self.user[run_id] = user
            self.states[run_id] = list(states)
            ids.append(run_id)
        return ids

    def delete(self, run_id: int) -> None:
        self.order.remove(run_id)
        del self.user[run_id]
        del self.states[run_id]

    def _read(self, run_id: int) -> dict[str, Any]:
        states = self.states[run_id]
        status = states.pop(0) if len(states) > 1 else states[0]
        if run_id in self.malformed:
            return {"id": run_id, "organization_id": "five", "status": status}
        return {"id": run_id, "organization_id": ORG, "status": status}

    # --- RunSource ---------------------------------------------------------------------
    def quota(self, operation: str) -> Quota:
        return self._quota

    async def _enter(self, name: str) -> None:
        self.calls[name] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
        finally:
            self.in_flight -= 1

    async def get_run(self, org_id: int, run_id: int) -> AgentRun:
        await self._enter("get")
        if self.fail_get:
            raise self.fail_get.pop(0)
        if run_id not in self.states:
            raise NotFoundError("Agent run not found.", status_code=404)
        data = self._read(run_id)
        if run_id in self.malformed:
            raise APIResponseValidationError("bad run", path="$.organization_id")
        return AgentRun(id=data["id"], organization_id=ORG, status=RunStatus(data["status"]))

    async def list_page(self, org_id: int, user_id: int | None, skip: int, limit: int) -> RunPage:
        await self._enter("list")
        self.list_users.append(user_id)
        if self.fail_list:
            raise self.fail_list.pop(0)
        matching = [r for r in reversed(self.order) if user_id is None or self.user[r] == user_id]
        payload = {"items": [self._read(r) for r in matching[skip : skip + limit]]}
        payload["total"] = len(matching)
        return _polling_parse(payload)

    async def current_user_id(self) -> int:
        await self._enter("me")
        return ME


def _polling_parse(payload: dict[str, Any]) -> RunPage:
    return _polling.parse_run_page(payload, url="http://127.0.0.1/fake")


@pytest.fixture
def fake() -> FakeRuns:
    return FakeRuns()


@pytest.fixture
async def poller(fake: FakeRuns) -> Any:
    poller = RunPoller(fake)
    yield poller
    await poller.aclose()


# --- one run ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "word"),
    [
        ("COMPLETE", "completed"),
        ("completed", "completed"),
        ("FAILED", "failed"),
        ("ERROR", "failed"),
        ("CANCELLED", "cancelled"),
        ("canceled", "cancelled"),
    ],
)
async def test_wait_for_run_every_terminal_status(
    fake: FakeRuns, poller: RunPoller, final: str, word: str
) -> None:
    [run_id] = fake.add(1, states=["QUEUED", "ACTIVE", "ACTIVE", final])
    run = await _polling.wait_for_run(poller, ORG, run_id)
    assert run.id == run_id
    assert run.status == word
    assert run.status.raw == final
    assert run.is_terminal
    # One run costs get_run calls only: no list page, no user lookup.
    assert fake.calls == {"get": 4}


async def test_watch_run_yields_each_status_change_in_order(
    fake: FakeRuns, poller: RunPoller
) -> None:
    [run_id] = fake.add(1, states=["QUEUED", "QUEUED", "ACTIVE", "RUNNING", "ACTIVE", "COMPLETE"])
    seen = [run.status async for run in _polling.watch_run(poller, ORG, run_id)]
    assert seen == ["pending", "running", "completed"]
    assert [s.raw for s in seen] == ["QUEUED", "ACTIVE", "COMPLETE"]
    assert not poller.running


async def test_wait_for_run_times_out_with_the_last_status(
    fake: FakeRuns, poller: RunPoller
) -> None:
    [run_id] = fake.add(1, states=["ACTIVE"])
    with pytest.raises(WaitTimeoutError) as info:
        await _polling.wait_for_run(poller, ORG, run_id, timeout=0.05)
    assert isinstance(info.value, TimeoutError)
    assert info.value.agent_run_id == run_id
    assert info.value.last_status == "running"
    assert "did not finish within 0.05s" in str(info.value)
    assert poller.tracked == 0


async def test_wait_for_run_missing_run_raises_not_found(fake: FakeRuns, poller: RunPoller) -> None:
    with pytest.raises(NotFoundError):
        await _polling.wait_for_run(poller, ORG, 424242)


async def test_cancelling_a_wait_leaves_no_task(fake: FakeRuns, poller: RunPoller) -> None:
    [run_id] = fake.add(1, states=["ACTIVE"])
    before = asyncio.all_tasks()
    waiter = asyncio.ensure_future(_polling.wait_for_run(poller, ORG, run_id))
    while fake.calls["get"] < 3:
        await asyncio.sleep(0.005)
    assert poller.running
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not poller.running
    assert poller.tracked == 0
    assert asyncio.all_tasks() == before
    calls = fake.calls["get"]
    await asyncio.sleep(0.05)
    assert fake.calls["get"] == calls  # nothing polls any more


async def test_poll_interval_fixes_the_interval(fake: FakeRuns, poller: RunPoller) -> None:
    [run_id] = fake.add(1, states=["ACTIVE"])
    with pytest.raises(WaitTimeoutError):
        await _polling.wait_for_run(poller, ORG, run_id, timeout=0.2, poll_interval=10.0)
    assert fake.calls["get"] == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1.0}, ValueError),
        ({"timeout": "5"}, TypeError),
        ({"timeout": True}, TypeError),
        ({"poll_interval": 0.0}, ValueError),
    ],
)
async def test_wait_arguments_are_checked(
    poller: RunPoller, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await _polling.wait_for_run(poller, ORG, 1, **kwargs)


@pytest.mark.parametrize("share", [0, 1.5, -0.1])
async def test_poll_share_is_checked(poller: RunPoller, share: float) -> None:
    with pytest.raises(ValueError):
        await _polling.wait_for_runs(poller, ORG, [1], poll_share=share)


async def test_run_ids_are_checked(poller: RunPoller) -> None:
    with pytest.raises(TypeError):
        await _polling.wait_for_runs(poller, ORG, "123")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await _polling.wait_for_runs(poller, ORG, [1, "2"])  # type: ignore[list-item]
    assert await _polling.wait_for_runs(poller, ORG, []) == {}


# --- many runs ------------------------------------------------------------------------------


def _random_states(rng: random.Random, final: str = "COMPLETE") -> list[str]:
    return ["ACTIVE"] * rng.randint(1, 6) + [final]


async def test_many_runs_are_covered_by_list_pages(fake: FakeRuns, poller: RunPoller) -> None:
    rng = random.Random(1)
    fake.add(40, user=OTHER)  # someone else's runs, older than ours
    ids = []
    for _ in range(300):
        ids += fake.add(1, states=_random_states(rng))
    fake.add(3, user=OTHER)
    finished = [run async for run in _polling.as_completed(poller, ORG, ids)]
    assert sorted(r.id for r in finished) == sorted(ids)
    assert all(r.status == "completed" for r in finished)
    assert fake.calls["me"] == 1
    assert set(fake.list_users) == {ME}
    # The doc loop would need at least 300 x 7 get_run calls; pages hold 100 runs each.
    assert fake.calls["list"] + fake.calls["get"] < 300
    assert fake.calls["list"] >= 3
    assert fake.max_in_flight >= 1
    assert not poller.running


async def test_results_come_in_the_order_asked(fake: FakeRuns, poller: RunPoller) -> None:
    rng = random.Random(2)
    ids = [fake.add(1, states=_random_states(rng))[0] for _ in range(30)]
    wanted = list(reversed(ids)) + ids[:3]  # duplicates are waited on once
    runs = await _polling.wait_for_runs(poller, ORG, wanted)
    assert list(runs) == list(reversed(ids))
    assert all(runs[i].id == i and runs[i].is_terminal for i in ids)


async def test_runs_of_other_users_are_found_too(fake: FakeRuns, poller: RunPoller) -> None:
    rng = random.Random(3)
    mine = [fake.add(1, states=_random_states(rng))[0] for _ in range(20)]
    theirs = [fake.add(1, user=OTHER, states=_random_states(rng))[0] for _ in range(20)]
    runs = await _polling.wait_for_runs(poller, ORG, mine + theirs)
    assert set(runs) == set(mine + theirs)
    # The user filter hid half the runs, so the poller dropped it.
    assert fake.list_users[0] == ME
    assert None in fake.list_users


async def test_a_deleted_run_ends_only_its_own_wait(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(50, states=["ACTIVE"] * 4 + ["COMPLETE"])
    gone = ids[25]
    fake.states[gone] = ["ACTIVE"]
    seen: list[int] = []

    async def consume() -> None:
        async for run in _polling.as_completed(poller, ORG, ids):
            seen.append(run.id)
            if len(seen) == 1:
                fake.delete(gone)

    with pytest.raises(RunWaitError) as info:
        await consume()
    assert sorted(seen) == sorted(set(ids) - {gone})
    error = info.value
    assert not isinstance(error, RunWaitTimeoutError)
    assert error.agent_run_ids == [gone]
    assert isinstance(error.errors[gone], NotFoundError)
    assert set(error.runs) == set(ids) - {gone}


async def test_a_malformed_run_ends_only_its_own_wait(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(20, states=["ACTIVE", "ACTIVE", "COMPLETE"])
    fake.malformed.add(ids[3])
    with pytest.raises(RunWaitError) as info:
        await _polling.wait_for_runs(poller, ORG, ids)
    assert list(info.value.errors) == [ids[3]]
    assert isinstance(info.value.errors[ids[3]], APIResponseValidationError)
    assert len(info.value.runs) == 19


async def test_batch_timeout_reports_each_unfinished_run(fake: FakeRuns, poller: RunPoller) -> None:
    done = fake.add(5, states=["COMPLETE"])
    stuck = fake.add(3, states=["ACTIVE"])
    with pytest.raises(RunWaitTimeoutError) as info:
        await _polling.wait_for_runs(poller, ORG, done + stuck, timeout=0.1)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert list(error.errors) == stuck
    for run_id in stuck:
        timeout = error.errors[run_id]
        assert isinstance(timeout, WaitTimeoutError)
        assert timeout.last_status == "running"
    assert list(error.runs) == done
    assert poller.tracked == 0


async def test_transient_errors_are_retried(fake: FakeRuns, poller: RunPoller) -> None:
    [run_id] = fake.add(1, states=["ACTIVE", "COMPLETE"])
    fake.fail_get = [RateLimitError("slow down", status_code=429)] * 3
    run = await _polling.wait_for_run(poller, ORG, run_id)
    assert run.status == "completed"
    assert fake.calls["get"] == 5


async def test_a_refused_token_ends_every_wait(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(10, states=["ACTIVE"])
    fake.fail_list = [AuthenticationError("Invalid token", status_code=401)]
    first = asyncio.ensure_future(_polling.wait_for_runs(poller, ORG, ids[:5]))
    second = asyncio.ensure_future(_polling.wait_for_runs(poller, ORG, ids[5:]))
    for task in (first, second):
        with pytest.raises(AuthenticationError):
            await task
    assert not poller.running


async def test_an_error_ending_many_waits_keeps_a_short_traceback(
    fake: FakeRuns, poller: RunPoller
) -> None:
    ids = fake.add(100, states=["ACTIVE"])
    refused = AuthenticationError("Invalid token", status_code=401)
    fake.fail_get = [refused] * 200
    fake.fail_list = [refused] * 200
    waits = [asyncio.ensure_future(_polling.wait_for_run(poller, ORG, i)) for i in ids]
    errors = await asyncio.gather(*waits, return_exceptions=True)
    assert all(error is refused for error in errors)
    # Raised once per wait: the traceback is that of the last raise, not one frame per wait.
    assert len(traceback.extract_tb(refused.__traceback__)) < 20


async def test_concurrent_waits_share_one_poller(fake: FakeRuns, poller: RunPoller) -> None:
    rng = random.Random(4)
    ids = [fake.add(1, states=_random_states(rng))[0] for _ in range(200)]
    tasks_before = len(asyncio.all_tasks())
    waits = [
        asyncio.ensure_future(_polling.wait_for_runs(poller, ORG, ids[i : i + 50]))
        for i in range(0, 200, 50)
    ]
    single = asyncio.ensure_future(_polling.wait_for_run(poller, ORG, ids[0]))
    await asyncio.sleep(0.01)
    assert poller.tracked == 200
    # One poller task plus its requests in flight, not one loop per run or per wait.
    assert len(asyncio.all_tasks()) - tasks_before - len(waits) - 1 <= 1 + 2 * 8
    results = await asyncio.gather(*waits)
    assert (await single).id == ids[0]
    assert sum(len(r) for r in results) == 200
    assert fake.calls["list"] + fake.calls["get"] < 200


async def test_poll_share_paces_the_poller(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(3, states=["ACTIVE"])
    wait = asyncio.ensure_future(_polling.wait_for_runs(poller, ORG, ids, poll_share=0.25))
    await asyncio.sleep(0.01)
    # 60 requests per 0.3 s is 200/s; a quarter of it is one request every 20 ms.
    assert poller._pacers["list"].interval == pytest.approx(0.02)
    assert poller._pacers["get"].interval == pytest.approx(0.02)
    other = asyncio.ensure_future(_polling.wait_for_run(poller, ORG, ids[0]))
    await asyncio.sleep(0.01)
    assert poller._pacers["get"].interval == pytest.approx(0.02)  # the smallest share wins
    wait.cancel()
    other.cancel()
    await asyncio.gather(wait, other, return_exceptions=True)
    assert not poller.running


async def test_the_pace_follows_the_smallest_share_still_waiting(
    fake: FakeRuns, poller: RunPoller
) -> None:
    stuck = fake.add(2, states=["ACTIVE"])
    quick = fake.add(3, states=["ACTIVE", "ACTIVE", "COMPLETE"])
    background = asyncio.ensure_future(_polling.wait_for_runs(poller, ORG, stuck))
    await asyncio.sleep(0.01)
    # 60 requests per 0.3 s is 200/s: half of it (the default share) is one every 10 ms.
    assert poller._pacers["get"].interval == pytest.approx(0.01)
    seen: list[float] = []

    def on_update(run: AgentRun) -> None:
        if not run.is_terminal:  # a finished run no longer counts
            seen.append(poller._pacers["list"].interval)

    await _polling.wait_for_runs(poller, ORG, quick, poll_share=0.1, on_update=on_update)
    assert seen and all(interval == pytest.approx(0.05) for interval in seen)
    # The small share ended with the wait that asked for it.
    assert poller._pacers["list"].interval == pytest.approx(0.01)
    assert poller._pacers["get"].interval == pytest.approx(0.01)
    background.cancel()
    await asyncio.gather(background, return_exceptions=True)


def test_min_share_matches_a_plain_min() -> None:
    rng = random.Random(6)
    shares = MinShare()
    live: list[float] = []
    for _ in range(5000):
        if live and rng.random() < 0.5:
            share = live.pop(rng.randrange(len(live)))
            shares.remove(share)
        else:
            share = rng.choice([0.1, 0.25, 0.5, 1.0, rng.random() or 1.0])
            live.append(share)
            shares.add(share)
        assert shares.smallest(0.5) == min(live, default=0.5)
        assert len(shares._heap) <= 2 * len(set(live)) + 17  # stale entries stay bounded


class _CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts the entries its iterations hand out."""

    visited = 0

    def __iter__(self) -> Any:
        for key in super().__iter__():
            self.visited += 1
            yield key

    def values(self) -> Any:
        for value in super().values():
            self.visited += 1
            yield value

    def items(self) -> Any:
        for item in super().items():
            self.visited += 1
            yield item


async def test_subscribe_and_release_do_not_scan_the_runs_watched(poller: RunPoller) -> None:
    # 10,000 concurrent waits once took tens of seconds here: each subscribe and release
    # scanned every watched run for the smallest share (n^2 / 2 visits). Count the visits.
    tracked = _CountingDict()
    poller._tracked = tracked
    n = 3000
    subs = [poller.subscribe(ORG, [run_id], share=0.5 - run_id / 10_000) for run_id in range(n)]
    assert poller.tracked == n
    assert poller._share() == pytest.approx(0.5 - (n - 1) / 10_000)
    for sub in reversed(subs):  # the smallest share leaves first, every time
        await poller.release(sub)
    assert poller.tracked == 0
    assert tracked.visited <= n  # quadratic: about 4.5 million
    assert not poller.running


def test_per_run_objects_have_no_instance_dict() -> None:
    for obj in (Subscription(ORG, [1], None, 0.5), RunEvent(1), TrackedRun(ORG, 1)):
        assert not hasattr(obj, "__dict__"), type(obj).__name__


async def test_a_waiting_wait_holds_no_queue(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(20, states=["ACTIVE"])
    waits = [asyncio.ensure_future(_polling.wait_for_run(poller, ORG, i)) for i in ids]
    while fake.calls["get"] + fake.calls["list"] < 3:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)
    subs = [sub for tracked in poller._tracked.values() for sub in tracked.subs]
    assert len(subs) == 20
    assert all(sub._events is None for sub in subs)  # each event was handed straight over
    assert all(sub._waiter is not None and sub._timer is None for sub in subs)
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert not poller.running


async def test_concurrent_waits_allocate_little(fake: FakeRuns, poller: RunPoller) -> None:
    # The benchmark's goal is under 5 KB per waiting run, task included (bench_memory);
    # an asyncio.Queue per wait alone was 3 KB.
    n = 500
    ids = fake.add(n + 1, states=["ACTIVE"])
    warm = asyncio.ensure_future(_polling.wait_for_run(poller, ORG, ids[-1]))
    await asyncio.sleep(0.01)
    gc.collect()
    tracemalloc.start()
    try:
        waits = [asyncio.ensure_future(_polling.wait_for_run(poller, ORG, i)) for i in ids[:n]]
        await asyncio.sleep(0)
        assert poller.tracked == n + 1
        per_wait = tracemalloc.get_traced_memory()[0] / n
    finally:
        tracemalloc.stop()
    for wait in [*waits, warm]:
        wait.cancel()
    await asyncio.gather(*waits, warm, return_exceptions=True)
    assert per_wait < 3000, f"{per_wait:.0f} bytes per wait"


def test_subscription_hands_over_events_in_order() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        sub = Subscription(ORG, [1], None, 0.5)
        events = [RunEvent(1, fatal=bool(i)) for i in range(3)]
        for event in events:
            sub.deliver(event)
        past = loop.time() - 1
        # Events delivered before a deadline are read even after it has passed.
        assert [await sub.get(past) for _ in events] == events
        assert await sub.get(past) is None
        assert sub._events is None
        # A reader waiting with a deadline gets the event, and its timer is cancelled.
        waiter = sub.get(loop.time() + 60)
        timer = sub._timer
        assert timer is not None and not waiter.done()
        sub.deliver(events[0])
        assert await waiter is events[0]
        assert timer.cancelled() and sub._timer is None
        # At the deadline the reader gets None.
        assert await sub.get(loop.time() + 0.01) is None
        # An event for a reader that was cancelled is kept for the next one.
        waiter = sub.get()
        waiter.cancel()
        sub.deliver(events[1])
        assert await sub.get() is events[1]
        # Closing forgets the reader and cancels its timer.
        sub.get(loop.time() + 60)
        timer = sub._timer
        sub.close()
        assert timer is not None and timer.cancelled() and sub._waiter is None

    asyncio.run(scenario())


async def test_a_deadline_leaves_no_live_timer(fake: FakeRuns, poller: RunPoller) -> None:
    [run_id] = fake.add(1, states=["QUEUED", "ACTIVE", "COMPLETE"])
    run = await _polling.wait_for_run(poller, ORG, run_id, timeout=3600)
    assert run.status == "completed"
    stream = _polling.watch_run(poller, ORG, fake.add(1, states=["ACTIVE"])[0], timeout=3600)
    assert (await stream.__anext__()).status == "running"
    await stream.aclose()
    loop: Any = asyncio.get_running_loop()
    expiring = [h for h in loop._scheduled if getattr(h._callback, "__name__", "") == "_expire"]
    assert all(h.cancelled() for h in expiring)


async def test_a_reused_plan_never_sends_a_run_twice_at_once(
    fake: FakeRuns, poller: RunPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reuse every plan for as long as it holds requests (replanning is expensive with
    # thousands of runs): what was taken from it must never be handed out again.
    monkeypatch.setattr(_engine, "REPLAN_COST_FACTOR", 1e9)
    claim = poller._claim
    claimed = 0

    def checked_claim(job: tuple[int, Window | int], flag: bool) -> None:
        nonlocal claimed
        if flag:
            org_id, what = job
            for run_id in what.run_ids if isinstance(what, Window) else (what,):
                tracked = poller._tracked.get((org_id, run_id))
                assert tracked is None or not tracked.in_flight, f"run {run_id} sent twice"
            claimed += 1
        claim(job, flag)

    monkeypatch.setattr(poller, "_claim", checked_claim)
    rng = random.Random(7)
    fake.add(30, user=OTHER)
    ids = [fake.add(1, states=_random_states(rng))[0] for _ in range(300)]
    runs = await _polling.wait_for_runs(poller, ORG, ids)
    assert list(runs) == ids and all(run.is_terminal for run in runs.values())
    assert claimed == fake.calls["list"] + fake.calls["get"]
    assert claimed < 300 * 3


async def test_on_update_sees_every_status_change(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(5, states=["QUEUED", "ACTIVE", "ACTIVE", "COMPLETE"])
    updates: list[tuple[int, str]] = []

    async def on_update(run: AgentRun) -> None:
        updates.append((run.id, str(run.status)))

    await _polling.wait_for_runs(poller, ORG, ids, on_update=on_update)
    for run_id in ids:
        mine = [status for rid, status in updates if rid == run_id]
        assert mine[-1] == "completed"
        assert mine == sorted(set(mine), key=mine.index)  # each change once
        assert set(mine) <= {"pending", "running", "completed"}


async def test_on_update_error_ends_the_wait(fake: FakeRuns, poller: RunPoller) -> None:
    ids = fake.add(3, states=["ACTIVE"])

    def on_update(run: AgentRun) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await _polling.wait_for_runs(poller, ORG, ids, on_update=on_update)
    assert poller.tracked == 0
    assert not poller.running


async def test_progress_bar(
    fake: FakeRuns, poller: RunPoller, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = fake.add(4, states=["ACTIVE", "COMPLETE"])
    fake.states[ids[0]] = ["ACTIVE", "FAILED"]
    await _polling.wait_for_runs(poller, ORG, ids, progress=True)
    err = capsys.readouterr().err
    assert "agent runs" in err
    assert "4/4" in err
    assert "completed=3" in err
    assert "failed=1" in err


async def test_progress_without_tqdm_warns(
    fake: FakeRuns, poller: RunPoller, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    ids = fake.add(2, states=["COMPLETE"])
    with pytest.warns(RuntimeWarning, match=r"codegen-async\[progress\]"):
        runs = await _polling.wait_for_runs(poller, ORG, ids, progress=True)
    assert len(runs) == 2


async def test_breaking_out_of_as_completed_stops_polling(
    fake: FakeRuns, poller: RunPoller
) -> None:
    ids = fake.add(10, states=["COMPLETE"]) + fake.add(10, states=["ACTIVE"])
    stream = _polling.as_completed(poller, ORG, ids)
    async for _run in stream:
        break
    await stream.aclose()
    assert poller.tracked == 0
    assert not poller.running


async def test_closed_poller_refuses_and_fails_waits(fake: FakeRuns) -> None:
    poller = RunPoller(fake)
    ids = fake.add(2, states=["ACTIVE"])
    wait = asyncio.ensure_future(_polling.wait_for_runs(poller, ORG, ids))
    await asyncio.sleep(0.01)
    await poller.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await wait
    with pytest.raises(RuntimeError, match="closed"):
        await _polling.wait_for_run(poller, ORG, ids[0])


async def test_waits_starting_while_the_poller_winds_down_never_hang(
    fake: FakeRuns, poller: RunPoller
) -> None:
    rng = random.Random(5)

    async def wait_later(run_id: int, delay: float) -> AgentRun:
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        await asyncio.sleep(delay)
        return await _polling.wait_for_run(poller, ORG, run_id)

    for _ in range(10):
        ids = fake.add(6, states=["COMPLETE"])
        delays = [rng.choice([0.0, 0.0, 0.001, 0.003, 0.01]) for _ in ids]
        runs = await asyncio.wait_for(
            asyncio.gather(*(wait_later(i, d) for i, d in zip(ids, delays, strict=True))), 10
        )
        assert [r.id for r in runs] == ids
    assert not poller.running


async def test_a_run_falling_due_while_the_worker_turns_idle_is_still_polled(
    fake: FakeRuns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loaded machine: the process is descheduled right after a worker found nothing to
    # send, long enough for the runs it had just planned as "not yet due" to fall due. The
    # worker then went idle with no timer (nothing due "later") and no request in flight to
    # wake it: every wait hung for good (the quick fanout benchmark overran its limit).
    frozen = {"now": 100.0}
    pick = RunPoller._pick

    def pick_then_descheduled(self: RunPoller, route: Any) -> Any:
        job = pick(self, route)
        if job is None:
            frozen["now"] += 1.0  # more than any interval between two polls here
        return job

    monkeypatch.setattr(RunPoller, "_pick", pick_then_descheduled)
    poller = RunPoller(fake, clock=lambda: frozen["now"])
    try:
        ids = fake.add(3, states=("ACTIVE", "ACTIVE", "COMPLETE"))
        runs = await asyncio.wait_for(_polling.wait_for_runs(poller, ORG, ids), 10)
        assert all(run.status == "completed" for run in runs.values())
    finally:
        await poller.aclose()
