"""Waiting on agent runs: many waits, one poller, a share of the quota.

The package is one feature in five modules, each with one role, imported in this order
(no module imports one listed after it, so there is no cycle):

* ``_plan``: the pure planner (backoff, where runs sit in the list, which pages to read,
  what a failure means); no I/O, no clock.
* ``_subscription``: what a wait and a poller exchange (:class:`RunEvent`,
  :class:`Subscription`) and the :class:`RunWatcher` Protocol every poller meets.
* ``_source``: where runs come from, the :class:`RunSource` Protocol and the client's
  version, :class:`ClientRunSource`, over the client's public face.
* ``_tracking``: one watched run's state (:class:`TrackedRun`), changed only by named
  transitions, and one organization's list (:class:`OrgLists`).
* ``_engine``: the poller (:class:`RunPoller`): subscriptions, pacing, sending, delivering.
* ``_fleet``: the same waits shared by every process on a token through Redis
  (:class:`FleetWatcher`): one leader's poller, the others read what it publishes.
* ``_waits``: the bodies of ``AsyncAgent.wait_for_run``, ``watch_run``, ``wait_for_runs``
  and ``as_completed``, written against :class:`RunWatcher`.

Only the names below leave the package; ``_client`` reads nothing else.
"""

from ._engine import RunPoller, full_sweep_seconds, quota_rate
from ._fleet import FleetSettings, FleetWatcher, fleet_fingerprint
from ._source import ClientRunSource, RunClient, RunPage, RunSource, parse_run_page
from ._subscription import DEFAULT_POLL_SHARE, RunEvent, RunWatcher, Subscription
from ._waits import (
    OnUpdate,
    as_completed,
    check_wait_args,
    is_finished,
    wait_for_run,
    wait_for_runs,
    watch_run,
)

__all__ = [
    "DEFAULT_POLL_SHARE",
    "ClientRunSource",
    "FleetSettings",
    "FleetWatcher",
    "OnUpdate",
    "RunClient",
    "RunEvent",
    "RunPage",
    "RunPoller",
    "RunSource",
    "RunWatcher",
    "Subscription",
    "as_completed",
    "check_wait_args",
    "fleet_fingerprint",
    "full_sweep_seconds",
    "is_finished",
    "parse_run_page",
    "quota_rate",
    "wait_for_run",
    "wait_for_runs",
    "watch_run",
]
