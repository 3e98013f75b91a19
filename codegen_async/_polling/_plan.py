"""Pure decisions of the run poller: how often to poll, where runs sit, what to fetch.

Nothing here does I/O or reads a clock, so every rule is unit-tested on its own:

* :func:`poll_interval`: the backoff between two polls of one run.
* :class:`ListMap`: where runs sit in the newest-first list of agent runs, learned from the
  pages read so far, and whether a page that was read proves a run is not in the list.
* :func:`plan_round`: which list pages (``skip`` windows of 100 runs) and which single
  ``get_run`` calls cover the runs due for a poll with the fewest requests, balanced over the
  two routes' budgets.
* :func:`classify_error`: whether a failed poll is worth retrying, ends one run's wait, or
  ends every wait.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import attrs

from .._endpoints import LIMIT
from ..errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    InternalServerError,
    RateLimitError,
)

__all__ = [
    "PAGE_SIZE",
    "Candidate",
    "ListMap",
    "Plan",
    "PollPolicy",
    "Window",
    "classify_error",
    "page_covers",
    "plan_round",
    "poll_interval",
]

PAGE_SIZE: Final[int] = LIMIT.maximum or 0  # the API's largest page (100), from the table
"""Runs per list page: the API's maximum ``limit``."""

_MAX_GROWTH_STEPS: Final = 64  # beyond this the interval is at its ceiling anyway


@attrs.frozen
class PollPolicy:
    """How often one run is polled: ``initial`` seconds at first, growing to ``ceiling``.

    ``fixed`` (the caller's ``poll_interval``) replaces the backoff with a constant interval.
    """

    initial: float
    ceiling: float
    growth: float = 1.5
    fixed: float | None = None

    @classmethod
    def for_window(cls, window: float, *, fixed: float | None = None) -> PollPolicy:
        """The default policy for a quota of ``window`` seconds (30 s documented).

        Polls start at 1/60 of the window (0.5 s) and grow to 1/6 of it (5 s, the
        documentation's own interval), so the policy scales with ``RateLimits.documented``.
        """
        return cls(initial=window / 60.0, ceiling=window / 6.0, fixed=fixed)


def poll_interval(polls: int, policy: PollPolicy) -> float:
    """Seconds to wait after the ``polls``-th poll of a run (``polls`` counts from 1)."""
    if policy.fixed is not None:
        return policy.fixed
    steps = min(max(polls - 1, 0), _MAX_GROWTH_STEPS)
    return min(policy.ceiling, policy.initial * policy.growth**steps)


# --- where runs sit in the list ----------------------------------------------------------


def page_covers(run_id: int, *, skip: int, ids: Sequence[int | None], total: int) -> bool:
    """Whether a page read proves ``run_id`` is not in the list when it is not on the page.

    The list is newest first and run ids grow with creation, so a run whose id lies between
    the page's smallest and largest id would be on it. A run newer than the first page's
    newest, or older than the last page's oldest, is not in the list either.
    """
    known = [i for i in ids if i is not None]
    if run_id in known:
        return False
    if not known:
        return skip == 0 and total == 0
    low, high = min(known), max(known)
    if low < run_id < high:
        return True
    if skip == 0 and run_id > high:
        return True
    return skip + len(ids) >= total and run_id < low


@attrs.define
class ListMap:
    """Where runs sit in one run list (one organization, one filter), as last seen.

    Every run read on a page becomes an anchor: its id, its position, and the list's total
    at the time. Runs created since then push everything down, so a position is corrected by
    the growth of the total. The position of a run not seen yet is interpolated between the
    anchors' ids (ids grow with creation), or extrapolated past them with the density of ids
    observed (positions per id, never more than one).
    """

    capacity: int = 20_000
    total: int | None = None
    _anchors: dict[int, tuple[int, int]] = attrs.field(factory=dict)
    _sorted: list[int] = attrs.field(factory=list)

    def __len__(self) -> int:
        return len(self._anchors)

    def clear(self) -> None:
        """Forget everything (the filter of the list changed)."""
        self.total = None
        self._anchors.clear()
        self._sorted.clear()

    def record_page(self, skip: int, total: int, ids: Sequence[int | None]) -> None:
        """Learn from one page: ``ids`` at positions ``skip``, ``skip + 1``, ...

        ``None`` stands for an item without a readable id: it holds a position, no anchor.
        """
        self.total = total
        for offset, run_id in enumerate(ids):
            if run_id is None:
                continue
            if run_id in self._anchors:
                del self._anchors[run_id]  # re-insert: the dict's order is the age of anchors
            else:
                bisect.insort(self._sorted, run_id)
            self._anchors[run_id] = (skip + offset, total)
        while len(self._anchors) > self.capacity:
            oldest = next(iter(self._anchors))
            del self._anchors[oldest]
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]

    def forget(self, run_id: int) -> None:
        """Drop one anchor (its run turned out not to be where the list said)."""
        if self._anchors.pop(run_id, None) is not None:
            del self._sorted[bisect.bisect_left(self._sorted, run_id)]

    def _now(self, run_id: int) -> float:
        position, total_then = self._anchors[run_id]
        return float(position + ((self.total or total_then) - total_then))

    def knows(self, run_id: int) -> bool:
        """Whether ``run_id`` was seen on a page."""
        return run_id in self._anchors

    def position(self, run_id: int) -> float:
        """The run's position now: as seen, or estimated from its neighbours' ids."""
        if run_id in self._anchors:
            return self._now(run_id)
        ids = self._sorted
        if not ids:
            return 0.0
        i = bisect.bisect_left(ids, run_id)
        if 0 < i < len(ids):
            older, newer = ids[i - 1], ids[i]
            p_older, p_newer = self._now(older), self._now(newer)
            fraction = (newer - run_id) / (newer - older)
            return p_newer + (p_older - p_newer) * fraction
        density = self._density()
        if i == 0:  # older than every anchor: further down the list
            oldest = ids[0]
            estimate = self._now(oldest) + (oldest - run_id) * density
        else:  # newer than every anchor: nearer the top
            newest = ids[-1]
            estimate = self._now(newest) - (run_id - newest) * density
        upper = float(max((self.total or 1) - 1, 0))
        return min(max(estimate, 0.0), upper)

    def _density(self) -> float:
        if len(self._sorted) < 2:
            return 1.0
        oldest, newest = self._sorted[0], self._sorted[-1]
        spread = self._now(oldest) - self._now(newest)
        return min(max(spread / (newest - oldest), 1e-3), 1.0)


# --- what to fetch in one round ------------------------------------------------------------


@attrs.frozen
class Candidate:
    """A run the poller tracks: its estimated list position (``None``: fetch it alone).

    ``overdue`` is how many seconds ago it fell due (0 when it just did).
    """

    run_id: int
    position: float | None
    due: bool
    overdue: float = 0.0


@attrs.frozen
class Window:
    """One list page to read: ``limit`` runs from position ``skip``; ``run_ids`` expected.

    ``due`` counts the runs due for a poll among them; ``urgency`` adds up how long they
    have been due, so that the poller reads the page that has waited most, not merely the
    fullest one (which would leave sparse pages waiting).
    """

    skip: int
    run_ids: tuple[int, ...]
    due: int
    limit: int = PAGE_SIZE
    urgency: float = 0.0


@attrs.frozen
class Plan:
    """The requests of one polling round."""

    windows: tuple[Window, ...] = ()
    singles: tuple[int, ...] = ()

    @property
    def requests(self) -> int:
        """How many requests the round costs."""
        return len(self.windows) + len(self.singles)


def _span(pages: int, singles: int, list_rate: float, get_rate: float) -> float:
    return max(pages / list_rate, singles / get_rate)


def plan_round(
    candidates: Iterable[Candidate],
    *,
    list_rate: float,
    get_rate: float,
    page_size: int = PAGE_SIZE,
    margin: int = 0,
    max_pages: int | None = None,
    max_singles: int | None = None,
) -> Plan:
    """Cover every due candidate with the cheapest mix of list pages and ``get_run`` calls.

    Candidates with a position are grouped greedily into windows of ``page_size`` positions,
    each opened ``margin`` positions above the first due run it covers (a run that is not
    where it was expected is found by ``get_run`` instead, so the default is no margin). A
    window also refreshes the not-yet-due runs it happens to cover. A
    window that would hold a single run costs as much as ``get_run`` on it, which is exact,
    so that run is fetched alone. The two routes have their own budgets (``list_rate`` and
    ``get_rate`` requests a second): the windows holding the fewest due runs move to
    ``get_run`` while that shortens the round. ``max_pages`` and ``max_singles`` cap the
    round, keeping the most urgent windows and the first singles in the order given
    (callers list the most overdue first).
    """
    if list_rate <= 0 or get_rate <= 0:
        raise ValueError("rates must be positive")
    items = list(candidates)
    singles: list[int] = [c.run_id for c in items if c.position is None and c.due]
    placed = sorted((c for c in items if c.position is not None), key=_position_of)
    windows: list[Window] = []
    covered = [False] * len(placed)
    low = 0  # first index that may still be uncovered or inside the next window
    for i, cand in enumerate(placed):
        if covered[i] or not cand.due:
            continue
        start = max(0, math.floor(_position_of(cand)) - margin)
        end = start + page_size
        while low < len(placed) and _position_of(placed[low]) < start:
            low += 1
        members: list[Candidate] = []
        j = low
        while j < len(placed) and _position_of(placed[j]) < end:
            if not covered[j]:
                members.append(placed[j])
                covered[j] = True
            j += 1
        if len(members) == 1:
            singles.append(cand.run_id)
            continue
        windows.append(
            Window(
                skip=start,
                run_ids=tuple(m.run_id for m in members),
                due=sum(1 for m in members if m.due),
                limit=page_size,
                urgency=sum(m.overdue for m in members if m.due),
            )
        )
    # Balance the two budgets: move the sparsest windows to get_run while the round shrinks.
    windows.sort(key=lambda w: w.due)
    by_id = {c.run_id: c for c in placed}  # once, not a scan of every run per window
    while windows:
        sparse = windows[0]
        before = _span(len(windows), len(singles), list_rate, get_rate)
        after = _span(len(windows) - 1, len(singles) + sparse.due, list_rate, get_rate)
        if after >= before:
            break
        windows.pop(0)
        singles.extend(rid for rid in sparse.run_ids if by_id[rid].due)
    windows.sort(key=lambda w: (-w.urgency, -w.due, w.skip))
    if max_pages is not None:
        windows = windows[: max(max_pages, 0)]
    if max_singles is not None:
        singles = singles[: max(max_singles, 0)]
    windows.sort(key=lambda w: w.skip)
    return Plan(tuple(windows), tuple(singles))


def _position_of(candidate: Candidate) -> float:
    assert candidate.position is not None
    return candidate.position


# --- what a failed poll means --------------------------------------------------------------

ErrorKind = Literal["transient", "run", "fatal"]


def classify_error(error: BaseException) -> ErrorKind:
    """What a failed poll means for the waits.

    * ``"transient"``: try again later (429, 5xx, no connection, request timeout).
    * ``"run"``: the wait on that run ends with this error (404: the run is gone; 403 or
      400; an answer that does not parse).
    * ``"fatal"``: every wait ends (401: the token is refused; a misconfigured client).
    """
    if isinstance(error, (RateLimitError, InternalServerError, APIConnectionError)):
        return "transient"
    if isinstance(error, AuthenticationError):
        return "fatal"
    if isinstance(error, APIStatusError):
        if error.status_code in (408, 409) or error.status_code >= 500:
            return "transient"
        return "run"
    if isinstance(error, APIResponseValidationError):
        return "run"
    return "fatal"
