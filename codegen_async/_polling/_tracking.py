"""What the poller knows about one run it watches, and about one organization's run list.

A :class:`TrackedRun` changes only through its named transitions, each one a fact the
engine learned (polled, failed, seen on a page, missing from a page, ...), so that the rules
of "how is this run polled next" live here, in one place, and not in the engine's I/O code.
The engine keeps one per run watched (10,000 at once is a use case): it is slotted, and its
subscriber list is the only thing it allocates.
"""

from __future__ import annotations

from typing import Final

import attrs

from ..models import AgentRun
from ._plan import ListMap, PollPolicy, poll_interval
from ._subscription import Subscription

__all__ = ["MAX_MISSES", "MAX_TRANSIENT_FAILURES", "OrgLists", "TrackedRun"]

MAX_TRANSIENT_FAILURES: Final = 6
"""Consecutive failed polls (429, 5xx, network) of one run before its wait gives up."""

MAX_MISSES: Final = 3
"""Times a run is not where the list should hold it before it is polled with get_run only."""

MAX_LIST_FAILURES: Final = 3
"""Consecutive transient failures of list pages before their runs are read one by one."""


@attrs.define(eq=False)
class TrackedRun:
    """One watched run: its subscribers, last state and how it is polled next.

    ``next_due`` is when it should be polled next (the engine's clock); ``in_flight`` that a
    request covering it is out. The other fields are the engine's evidence about where the
    run sits and how reads of it went; only the transitions below change them.
    """

    org_id: int
    run_id: int
    next_due: float = 0.0
    subs: list[Subscription] = attrs.field(factory=list)
    last: AgentRun | None = None
    in_flight: bool = False
    polls: int = 0
    failures: int = 0  # consecutive transient failures
    misses: int = 0  # list reads that should have held it and did not
    direct: bool = False  # poll with get_run only
    single_next: bool = False  # poll with get_run next time (it was not where expected)
    absent: bool = False  # a page proved it is not in the (filtered) list

    def fetch_alone(self, use_list: bool) -> bool:
        """Whether its next poll is a ``get_run`` of its own rather than a list page."""
        return self.direct or self.single_next or not use_list

    def observed(self, run: AgentRun) -> bool:
        """A poll returned ``run``. Whether its status changed."""
        self.polls += 1
        self.failures = 0
        previous, self.last = self.last, run
        return previous is None or previous.status != run.status

    def poll_later(self, now: float, policy: PollPolicy) -> None:
        """Schedule the next poll after a successful one (the policy's backoff)."""
        self.next_due = now + poll_interval(self.polls, policy)

    def poll_by(self, when: float) -> None:
        """Poll it no later than ``when`` (a new wait asked for a shorter interval)."""
        self.next_due = min(self.next_due, when)

    def poll_failed(self, now: float, policy: PollPolicy) -> bool:
        """A poll of it failed transiently. Whether its wait should give up."""
        self.failures += 1
        if self.failures >= MAX_TRANSIENT_FAILURES:
            return True
        self.next_due = now + poll_interval(self.failures, policy)
        return False

    def read_alone(self) -> bool:
        """``get_run`` answered. Whether a page had proved it absent from the list."""
        was_absent = self.absent
        self.single_next = self.absent = False
        return was_absent

    def seen_on_page(self) -> None:
        """A list page held it: the list is where to look for it again."""
        self.misses = 0
        self.single_next = self.absent = self.direct = False

    def missed_on_page(self, *, proved_absent: bool, was_anchored: bool) -> None:
        """A page that should have held it did not.

        If the page proves it is not in the list, or it was seen exactly there before, it
        is read with ``get_run`` next; if its position was only estimated, the page's new
        anchors place it better. After :data:`MAX_MISSES`, stop looking for it in the list.
        """
        self.misses += 1
        if proved_absent:
            self.absent = True
        if proved_absent or was_anchored:
            self.single_next = True
        if self.misses >= MAX_MISSES:
            self.direct = True

    def page_failed(self, *, read_alone: bool, now: float, policy: PollPolicy) -> None:
        """The page meant to cover it failed: read it alone next, or retry the page later."""
        if read_alone:
            self.single_next = True
        else:
            self.next_due = now + poll_interval(1, policy)

    def list_changed(self) -> None:
        """The list it is looked for in changed (a filter dropped): forget what it taught."""
        self.misses = 0
        self.direct = self.absent = False


@attrs.define(eq=False)
class OrgLists:
    """What the poller knows about one organization's run list.

    ``filter_user``: pages are filtered by the token's user (fewer runs to page through),
    until runs waited on turn out to be someone else's. ``list_broken`` counts pages that
    could not be read at all (after two, runs are read one by one).
    """

    org_id: int
    filter_user: bool = True
    lists: ListMap = attrs.field(factory=ListMap)
    list_failures: int = 0
    list_broken: int = 0
    not_in_filtered: int = 0

    @property
    def use_list(self) -> bool:
        """Whether list pages are worth reading for this organization."""
        return self.list_broken < 2

    def page_failed(self, *, broken: bool) -> bool:
        """A page failed (``broken``: for good). Whether its runs should be read alone."""
        if broken:
            self.list_broken += 1
            return True
        self.list_failures += 1
        return self.list_failures >= MAX_LIST_FAILURES

    def page_read(self, skip: int, total: int, ids: tuple[int | None, ...]) -> None:
        """A page was read: learn the positions it shows."""
        self.list_failures = 0
        self.lists.record_page(skip, total, ids)

    def found_outside_filter(self) -> bool:
        """A run absent from the filtered list exists. Whether to stop filtering now."""
        if not self.filter_user:
            return False
        self.not_in_filtered += 1
        if self.not_in_filtered < 2:
            return False
        self.filter_user = False
        self.lists.clear()
        return True
