"""The run poller's pure decisions: backoff, list positions, round plans, error kinds."""

from __future__ import annotations

import pickle

import pytest

from codegen_async import RunStatus
from codegen_async._polling import parse_run_page
from codegen_async._polling._plan import (
    Candidate,
    ListMap,
    PollPolicy,
    classify_error,
    page_covers,
    plan_round,
    poll_interval,
)
from codegen_async.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CodegenError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RunWaitError,
    RunWaitTimeoutError,
    WaitTimeoutError,
)
from codegen_async.models import AgentRun

# --- RunStatus: the spellings -------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "word", "terminal"),
    [
        ("ACTIVE", "running", False),
        ("RUNNING", "running", False),
        ("running", "running", False),
        ("PENDING", "pending", False),
        ("QUEUED", "pending", False),
        ("COMPLETE", "completed", True),
        ("COMPLETED", "completed", True),
        ("completed", "completed", True),
        ("FAILED", "failed", True),
        ("ERROR", "failed", True),
        ("CANCELLED", "cancelled", True),
        ("CANCELED", "cancelled", True),
        ("cancelled", "cancelled", True),
        ("PAUSED", "paused", False),
    ],
)
def test_run_status_maps_every_spelling(wire: str, word: str, terminal: bool) -> None:
    status = RunStatus(wire)
    assert status == word
    assert str(status) == word
    assert status.raw == wire
    assert status.is_terminal is terminal
    assert status.is_known
    assert hash(status) == hash(word)
    assert pickle.loads(pickle.dumps(status)).raw == wire


def test_unknown_status_is_kept_and_not_terminal() -> None:
    status = RunStatus("EVALUATING_SOMETHING_NEW")
    assert status == "EVALUATING_SOMETHING_NEW"
    assert status.raw == "EVALUATING_SOMETHING_NEW"
    assert not status.is_terminal
    assert not status.is_known
    run = AgentRun(id=1, organization_id=2, status=status)
    assert not run.is_terminal
    assert not AgentRun(id=1, organization_id=2, status=None).is_terminal


# --- backoff ----------------------------------------------------------------------------------


def test_poll_interval_starts_short_and_grows_to_the_ceiling() -> None:
    policy = PollPolicy.for_window(30.0)
    assert (policy.initial, policy.ceiling) == (0.5, 5.0)
    delays = [poll_interval(n, policy) for n in range(1, 12)]
    assert delays[0] == 0.5
    assert delays == sorted(delays)
    assert delays[-1] == 5.0
    assert max(delays) == 5.0
    assert poll_interval(10**9, policy) == 5.0  # no overflow


def test_poll_interval_fixed_and_scaled() -> None:
    assert poll_interval(1, PollPolicy.for_window(30.0, fixed=2.0)) == 2.0
    assert poll_interval(50, PollPolicy.for_window(30.0, fixed=2.0)) == 2.0
    scaled = PollPolicy.for_window(0.3)
    assert poll_interval(1, scaled) == pytest.approx(0.005)
    assert poll_interval(100, scaled) == pytest.approx(0.05)


# --- where runs sit in the list -------------------------------------------------------------


def test_page_covers() -> None:
    ids = [120, 118, 117, 110]  # newest first, gaps are other users' runs
    kwargs = {"skip": 100, "total": 500}
    assert page_covers(119, ids=ids, **kwargs)  # between: would be on the page
    assert not page_covers(118, ids=ids, **kwargs)  # on the page
    assert not page_covers(130, ids=ids, **kwargs)  # above a page that is not the first
    assert not page_covers(100, ids=ids, **kwargs)  # below a page that is not the last
    assert page_covers(130, ids=ids, skip=0, total=500)  # newer than the newest run
    assert page_covers(100, ids=ids, skip=496, total=500)  # older than the oldest run
    assert page_covers(5, ids=[], skip=0, total=0)  # an empty list holds nothing
    assert not page_covers(5, ids=[], skip=100, total=50)
    assert page_covers(119, ids=[120, None, 110], skip=0, total=3)


def test_list_map_positions_follow_new_runs() -> None:
    lists = ListMap()
    assert lists.position(5) == 0.0  # nothing known: the top
    lists.record_page(0, 300, list(range(1000, 900, -1)))
    assert lists.position(1000) == 0
    assert lists.position(950) == 50
    assert lists.knows(950)
    # Ten new runs on top push everything down by ten.
    lists.record_page(0, 310, list(range(1010, 910, -1)))
    assert lists.position(950) == 60
    lists.forget(950)
    assert not lists.knows(950)
    assert lists.position(950) == pytest.approx(60)  # interpolated between 951 and 949


def test_list_map_extrapolates_with_the_density_of_ids() -> None:
    lists = ListMap()
    # The user's runs are every other id: density 0.5 positions per id.
    lists.record_page(0, 1000, list(range(2000, 1800, -2)))
    assert lists.position(1800) == pytest.approx(100)
    assert lists.position(1600) == pytest.approx(200)
    assert lists.position(2100) == 0.0  # newer than everything: the top
    assert lists.position(1) == 999  # never past the end


def test_list_map_capacity_drops_the_oldest_anchors() -> None:
    lists = ListMap(capacity=150)
    lists.record_page(0, 400, list(range(400, 300, -1)))
    lists.record_page(100, 400, list(range(300, 200, -1)))
    assert len(lists) == 150
    assert not lists.knows(400)
    assert lists.knows(201)
    lists.clear()
    assert len(lists) == 0
    assert lists.total is None


def test_list_map_skips_items_without_an_id() -> None:
    lists = ListMap()
    lists.record_page(0, 3, [30, None, 28])
    assert lists.position(28) == 2


# --- round plans ------------------------------------------------------------------------------


def _cands(positions: dict[int, float | None], due: set[int] | None = None) -> list[Candidate]:
    return [
        Candidate(rid, pos, due is None or rid in due) for rid, pos in sorted(positions.items())
    ]


def test_plan_covers_contiguous_runs_with_pages() -> None:
    plan = plan_round(
        _cands({1000 - i: float(i) for i in range(1000)}), list_rate=1.0, get_rate=1.0
    )
    assert len(plan.windows) == 10
    assert plan.singles == ()
    assert [w.skip for w in plan.windows] == list(range(0, 1000, 100))
    assert sum(len(w.run_ids) for w in plan.windows) == 1000
    assert plan.requests == 10


def test_plan_fetches_lone_and_unplaced_runs_alone() -> None:
    plan = plan_round(_cands({1: 0.0, 2: 1.0, 3: 500.0, 4: None}), list_rate=1.0, get_rate=1.0)
    assert [w.skip for w in plan.windows] == [0]
    assert set(plan.windows[0].run_ids) == {1, 2}
    assert set(plan.singles) == {3, 4}


def test_plan_one_run_is_one_get() -> None:
    plan = plan_round(_cands({7: 0.0}), list_rate=1.0, get_rate=1.0)
    assert plan.windows == ()
    assert plan.singles == (7,)


def test_plan_not_due_runs_ride_along_but_open_no_window() -> None:
    plan = plan_round(
        _cands({1: 0.0, 2: 5.0, 3: 300.0, 4: 301.0}, due={1}), list_rate=1.0, get_rate=1.0
    )
    assert len(plan.windows) == 1
    assert plan.windows[0].run_ids == (1, 2)
    assert plan.windows[0].due == 1
    assert plan.singles == ()


def test_plan_balances_the_two_budgets() -> None:
    # Ten windows of two runs each: reading all pages takes 10 s at 1 page/s; moving some
    # to get_run (also 1/s) shortens the round to about 7 s.
    positions = {}
    for block in range(10):
        positions[block * 1000] = float(block * 100)
        positions[block * 1000 + 1] = float(block * 100 + 1)
    plan = plan_round(_cands(positions), list_rate=1.0, get_rate=1.0)
    assert 0 < len(plan.windows) < 10
    assert len(plan.singles) == 2 * (10 - len(plan.windows))
    assert max(len(plan.windows), len(plan.singles)) < 10
    # With a much faster get route, every sparse window moves to get_run.
    fast = plan_round(_cands(positions), list_rate=1.0, get_rate=100.0)
    assert fast.windows == ()
    assert len(fast.singles) == 20


def test_plan_caps() -> None:
    positions = {i: float(i * 3) for i in range(1000)}
    plan = plan_round(_cands(positions), list_rate=1.0, get_rate=1.0, max_pages=2)
    assert len(plan.windows) == 2
    singles = plan_round(
        _cands({i: None for i in range(50)}), list_rate=1.0, get_rate=1.0, max_singles=5
    )
    assert singles.singles == (0, 1, 2, 3, 4)


def test_plan_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        plan_round([], list_rate=0.0, get_rate=1.0)


# --- error kinds ------------------------------------------------------------------------------


def _status(cls: type, code: int) -> Exception:
    error: Exception = cls("x", status_code=code)
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_status(RateLimitError, 429), "transient"),
        (_status(InternalServerError, 503), "transient"),
        (APIConnectionError("down"), "transient"),
        (APITimeoutError("slow"), "transient"),
        (_status(NotFoundError, 404), "run"),
        (_status(PermissionDeniedError, 403), "run"),
        (_status(BadRequestError, 400), "run"),
        (APIResponseValidationError("bad"), "run"),
        (_status(AuthenticationError, 401), "fatal"),
        (ConfigurationError("no org"), "fatal"),
        (RuntimeError("bug"), "fatal"),
    ],
)
def test_classify_error(error: Exception, kind: str) -> None:
    assert classify_error(error) == kind


# --- pages parsed item by item ----------------------------------------------------------------


def test_parse_run_page_isolates_a_malformed_item() -> None:
    payload = {
        "items": [
            {"id": 3, "organization_id": 1, "status": "ACTIVE"},
            {"id": 2, "organization_id": "not an int", "status": "COMPLETE"},
            {"nonsense": True},
            {"id": 1, "organization_id": 1, "status": "COMPLETE"},
        ],
        "total": 4,
        "page": 1,
        "size": 4,
        "pages": 1,
    }
    page = parse_run_page(payload, url="http://127.0.0.1/x")
    assert page.total == 4
    assert page.ids == (3, 2, None, 1)
    assert set(page.runs) == {3, 1}
    assert page.runs[1].status == "completed"
    assert set(page.errors) == {2}
    assert page.errors[2].path is not None
    assert page.errors[2].path.startswith("$.items[1]")


@pytest.mark.parametrize("payload", [None, [], {"items": "x", "total": 1}, {"items": []}])
def test_parse_run_page_rejects_a_malformed_page(payload: object) -> None:
    with pytest.raises(APIResponseValidationError):
        parse_run_page(payload)


# --- the wait errors --------------------------------------------------------------------------


def test_run_wait_errors() -> None:
    done = AgentRun(id=1, organization_id=9, status=RunStatus("COMPLETE"))
    timeout = WaitTimeoutError(2, 5.0, RunStatus("ACTIVE"))
    error = RunWaitTimeoutError({2: timeout}, {1: done})
    assert isinstance(error, RunWaitError)
    assert isinstance(error, CodegenError)
    assert isinstance(error, TimeoutError)
    assert error.agent_run_ids == [2]
    assert error.runs == {1: done}
    assert "1 of 2 agent runs" in str(error)
    assert "2 (WaitTimeoutError)" in str(error)
    assert timeout.last_status == "running"
    assert isinstance(timeout, TimeoutError)
    assert isinstance(timeout, CodegenError)
    many = RunWaitError({i: NotFoundError("gone", status_code=404) for i in range(8)})
    assert "and 3 more" in str(many)
    assert not isinstance(many, TimeoutError)
