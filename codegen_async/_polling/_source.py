"""Where the poller's runs come from: the :class:`RunSource` seam and its client version.

The engine (``_engine``) asks a :class:`RunSource` for runs and quotas, nothing else, so it
is tested against an in-memory service and never sees a client. :class:`ClientRunSource` is
the real one. It reads an ``AsyncAgent`` through :class:`RunClient`, a Protocol of the
client's *public* face (``base_url``, ``rate_limits``, ``get_run``, ``get_current_user``),
plus one typed callable the client hands over for raw JSON list pages (:data:`FetchJson`):
pages are read undecoded and each item is parsed on its own, so one malformed run does not
hide the 99 others on its page. Nothing here imports the client: the seam is structural,
checked by mypy, and no private name crosses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import attrs

from .._converter import ResponseShapeError, structure
from .._endpoints import ENDPOINTS, Endpoint, Quota
from .._ratelimit import RateLimits
from ..errors import APIResponseValidationError
from ..models import AgentRun, User

__all__ = [
    "RAW_LIST_RUNS",
    "ClientRunSource",
    "FetchJson",
    "RunClient",
    "RunPage",
    "RunSource",
    "parse_run_page",
]


@attrs.frozen
class RunPage:
    """One page of the run list, item by item.

    ``ids`` gives every item's id in list order (``None`` where the item has no readable
    id); ``runs`` the items that parsed; ``errors`` the items that did not, by id, so that a
    malformed run ends only its own wait.
    """

    total: int
    ids: tuple[int | None, ...]
    runs: Mapping[int, AgentRun]
    errors: Mapping[int, APIResponseValidationError] = attrs.field(factory=dict)


class RunSource(Protocol):
    """What the poller needs from a client (a fake one in unit tests)."""

    def quota(self, operation: str) -> Quota:
        """The quota to pace ``operation`` (``"get_run"`` or ``"list_runs"``) by."""
        ...

    async def get_run(self, org_id: int, run_id: int) -> AgentRun:
        """One run; raises the client's typed errors."""
        ...

    async def list_page(self, org_id: int, user_id: int | None, skip: int, limit: int) -> RunPage:
        """One page of an organization's runs, newest first."""
        ...

    async def current_user_id(self) -> int:
        """The id of the token's user."""
        ...


class RunClient(Protocol):
    """The public face of ``AsyncAgent`` that :class:`ClientRunSource` reads."""

    @property
    def base_url(self) -> str:
        """The API root."""
        ...

    @property
    def rate_limits(self) -> RateLimits:
        """The quotas the client keeps to."""
        ...

    async def get_run(self, agent_run_id: int, *, org_id: int | None = None) -> AgentRun:
        """One run."""
        ...

    async def get_current_user(self) -> User:
        """The token's user."""
        ...


FetchJson = Callable[[Endpoint, Mapping[str, object]], Awaitable[Any]]
"""Send one request of an endpoint row with these path and query values; the decoded JSON."""

RAW_LIST_RUNS: Final = attrs.evolve(ENDPOINTS["list_runs"], response=Any)
"""``list_runs`` answered as undecoded JSON: the source parses each item on its own."""


class ClientRunSource:
    """A :class:`RunSource` over an ``AsyncAgent`` (through its transport and limiters).

    Args:
        client: The client (its public methods and settings).
        fetch_json: How the client sends one endpoint row and returns undecoded JSON
            (the client passes its own request function; it goes through its limiters).
    """

    def __init__(self, client: RunClient, fetch_json: FetchJson) -> None:
        self._client = client
        self._fetch_json = fetch_json

    def quota(self, operation: str) -> Quota:
        endpoint = ENDPOINTS[operation]
        quota = self._client.rate_limits.for_endpoint(endpoint)
        return quota if quota is not None else endpoint.quota

    async def get_run(self, org_id: int, run_id: int) -> AgentRun:
        return await self._client.get_run(run_id, org_id=org_id)

    async def current_user_id(self) -> int:
        user = await self._client.get_current_user()
        return int(user.id)

    async def list_page(self, org_id: int, user_id: int | None, skip: int, limit: int) -> RunPage:
        values = {"org_id": org_id, "user_id": user_id, "skip": skip, "limit": limit}
        payload = await self._fetch_json(RAW_LIST_RUNS, values)
        url = self._client.base_url + RAW_LIST_RUNS.path.format_map(values)
        return parse_run_page(payload, url=url)


def _envelope_error(payload: Any, url: str, what: str) -> APIResponseValidationError:
    return APIResponseValidationError(
        f"GET {url}: the answer is not a page of agent runs ({what})",
        method="GET",
        url=url,
        path="$",
        body=payload,
    )


def parse_run_page(payload: Any, *, url: str = "") -> RunPage:
    """Split a decoded ``Page[AgentRunResponse]`` into parsed runs and per-item errors.

    Raises:
        APIResponseValidationError: the page itself (``total``, ``items``) is malformed.
    """
    if not isinstance(payload, dict):
        raise _envelope_error(payload, url, f"got {type(payload).__name__}")
    items, total = payload.get("items"), payload.get("total")
    if not isinstance(items, list) or isinstance(total, bool) or not isinstance(total, int):
        raise _envelope_error(payload, url, "'items' must be a list and 'total' an integer")
    ids: list[int | None] = []
    runs: dict[int, AgentRun] = {}
    errors: dict[int, APIResponseValidationError] = {}
    for index, item in enumerate(items):
        raw_id = item.get("id") if isinstance(item, dict) else None
        run_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        ids.append(run_id)
        try:
            run = structure(item, AgentRun)
        except ResponseShapeError as exc:
            if run_id is not None:
                errors[run_id] = APIResponseValidationError(
                    f"GET {url}: agent run {run_id} does not match the API's "
                    f"AgentRunResponse: {exc}",
                    method="GET",
                    url=url,
                    path=f"$.items[{index}]" + (exc.path or "").lstrip("$"),
                    body=item,
                )
            continue
        runs[run.id] = run
    return RunPage(total=total, ids=tuple(ids), runs=runs, errors=errors)
