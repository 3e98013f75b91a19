"""The run poller and the wait functions, against an in-memory run service.

The fake service keeps the run list as the API does (newest first, ids growing, filter by
user) and finishes each run after it has been read a set number of times, so the outcome
does not depend on timing. Its quota is scaled down (60 requests per 0.3 s) to keep the
tests fast.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from codegen_async import _polling
from codegen_async._endpoints import Quota
from codegen_async._poller import RunPage, RunPoller
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
    from codegen_async._poller import parse_run_page

    return parse_run_page(payload, url="http://127.0.0.1/fake")


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
