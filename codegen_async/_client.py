"""``AsyncAgent``: the asyncio client of the Codegen API.

Each method is a thin, typed front for one row of the endpoint table (``_endpoints``): it
checks its arguments, then hands the row to the transport, which rate-limits, sends,
retries and parses. The blocking ``codegen_sync.Agent`` is derived from this class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from os import PathLike
from ssl import SSLContext
from types import TracebackType
from typing import Any, TypedDict

import aiohttp
import attrs

from . import _polling
from ._config import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Timeout,
    check_retries,
    check_seconds,
    env_rate_limit_scale,
    redact,
    resolve_config,
)
from ._converter import unstructure
from ._endpoints import ENDPOINTS, Endpoint, Quota
from ._generic import generic_endpoint, generic_limits
from ._logging import configure_from_env
from ._network import resolve_network
from ._notgiven import NOT_GIVEN, NotGiven
from ._options import CallOptions, call_options
from ._pagination import iterate_pages
from ._path import fill_path
from ._polling import (
    DEFAULT_POLL_SHARE,
    ClientRunSource,
    FleetSettings,
    FleetWatcher,
    RunPoller,
    fleet_fingerprint,
)
from ._ratelimit import REGISTRY, RateLimits
from ._raw import AsyncRawResponses, RawTransport
from ._transport import Transport, TransportStats
from ._validation import (
    check_choice,
    check_collections,
    check_extra_query,
    check_headers,
    check_id,
    check_images,
    check_metadata,
    check_params,
    check_prompt,
    check_range,
    check_text,
    merge_headers,
)
from ._waiting import finish_anyway
from .errors import ConfigurationError
from .models import (
    AgentRun,
    AgentRunLog,
    AgentRunWithLogs,
    AgentType,
    AnalyzeLogsResponse,
    CheckSuiteSettings,
    CheckSuiteSettingsUpdate,
    CliRules,
    EditPullRequestResult,
    FinishedRun,
    OAuthProvider,
    Organization,
    OrganizationIntegrations,
    Page,
    PullRequestState,
    Repository,
    SetupCommandsResponse,
    SlackConnectToken,
    SourceType,
    User,
)

__all__ = ["AsyncAgent"]

TimeoutArg = float | Timeout | NotGiven | None
DeadlineArg = float | NotGiven | None


class AsyncAgent:
    """Asyncio client of the Codegen API.

    Args:
        token: API token. Default: the ``CODEGEN_API_TOKEN`` environment variable.
        org_id: Organization used when a method is not given one. Default:
            ``CODEGEN_ORG_ID``.
        base_url: API root. Default: ``CODEGEN_API_BASE_URL``, else
            ``https://api.codegen.com``.
        timeout: Seconds for one request (a number, or a :class:`Timeout` with ``total``
            and ``connect``); default 60 s total, 10 s to connect; ``None``: no limit.
        max_retries: Retries of a failed attempt (0 disables); default 2.
        rate_limits: Quotas to keep; default :meth:`RateLimits.documented`, its windows
            (and so the poll intervals) scaled by ``CODEGEN_RATE_LIMIT_SCALE`` if set.
            :meth:`RateLimits.disabled` turns client-side limiting off.
        rate_limit_backend: ``"redis://host:port/db"`` to share quotas with other
            processes; default ``CODEGEN_RATE_LIMIT_BACKEND``, else in-process memory.
        allow_insecure_http: Allow ``http://`` to a host that is not loopback.
        session: An aiohttp session to use instead of the client's own (not closed by
            :meth:`aclose`); its own TLS, pool and ``trust_env`` settings then apply
            (``proxy=`` still does). Not on the blocking ``Agent``, whose loop is its own.
        deadline: Seconds a whole call may take at most: quota wait, every attempt and
            the pauses between them; default none. A wait that cannot end in time is not
            started: the call raises at once (:class:`RateLimitError` with
            ``retry_after`` for a quota wait, else the last attempt's error).
        default_headers: Headers sent with every call (not ``Authorization``).
        max_response_bytes: Largest answer body read, decoded (default 32 MiB; ``None``:
            no limit); a bigger one raises :class:`APIResponseValidationError`.
        proxy: An ``http://`` (or ``https://``) proxy URL for every request; credentials
            may be in the URL. Default: none, or the environment's (see ``trust_env``).
        trust_env: Honour ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``,
            ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` (default ``True``, as requests and httpx
            do); ``False`` ignores them.
        ssl: TLS verification: an ``ssl.SSLContext``, a CA bundle path (file or
            directory), or ``False`` to turn verification off (warns with
            ``InsecureTLSWarning``). Default: the system's CAs.
        connection_limit: Most connections open at once (default 100).
        fleet_polling: Share run watching with every process on this token through the
            Redis rate-limit backend (one process polls, all receive; see README
            "Fleets"). Default: on when ``rate_limit_backend`` is Redis; ``False`` makes
            this client poll on its own.

    Every method also takes, by keyword: ``timeout=`` (one attempt), ``deadline=`` (the
    whole call), ``extra_headers=``, ``extra_query=`` and, where the operation has a body,
    ``extra_body=``: sent as given, winning over the SDK's own values (for a field or
    parameter the SDK does not know yet). ``timeout=`` and ``deadline=`` left out keep the
    client's; ``None`` removes that limit for the call (as in openai-python).
    :meth:`with_options` makes a client with other defaults that shares this one's
    connections.

    Use it as ``async with AsyncAgent() as agent:``, or call :meth:`aclose` when done.
    """

    def __init__(
        self,
        token: str | None = None,
        org_id: int | None = None,
        *,
        base_url: str | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        max_retries: int = 2,
        rate_limits: RateLimits | None = None,
        rate_limit_backend: str | None = None,
        allow_insecure_http: bool = False,
        session: aiohttp.ClientSession | None = None,
        deadline: float | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | str | PathLike[str] | bool | None = None,
        connection_limit: int | None = None,
        fleet_polling: bool | None = None,
    ) -> None:
        token = redact(token)  # hidden from tracebacks that show local variables
        self._config = resolve_config(
            token=token,
            org_id=org_id,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            rate_limit_backend=rate_limit_backend,
            allow_insecure_http=allow_insecure_http,
            deadline=deadline,
            default_headers=default_headers,
            max_response_bytes=max_response_bytes,
        )
        network = resolve_network(
            proxy=proxy,
            trust_env=trust_env,
            ssl=ssl,
            connection_limit=connection_limit,
            base_url=self._config.base_url,
        )
        self._config = attrs.evolve(self._config, network=network)
        configure_from_env(secret=self._config.token)  # CODEGEN_LOG=debug|info
        if rate_limits is None:
            limits = RateLimits.documented(scale=env_rate_limit_scale())
        else:
            limits = rate_limits
        self._transport = Transport(
            self._config, limits, backend=self._config.rate_limit_backend, session=session
        )
        if fleet_polling is not None and not isinstance(fleet_polling, bool):
            raise TypeError(f"fleet_polling must be a bool or None, got {fleet_polling!r}")
        self._fleet_polling = fleet_polling is not False

    # --- lifecycle and settings --------------------------------------------------------
    async def __aenter__(self) -> AsyncAgent:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def with_options(
        self,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: DeadlineArg = NOT_GIVEN,
        default_headers: Mapping[str, str] | None = None,
    ) -> AsyncAgent:
        """A client with other defaults, sharing this one's connections.

        The new client shares the session, the rate limiters, the stats and the run
        poller, so it is cheap to make per call site
        (``await agent.with_options(deadline=5).get_run(run_id)``). Closing either client
        closes what they share.

        An argument left out keeps this client's value. For the two limits ``None`` is a
        value: ``with_options(timeout=None, deadline=None)`` makes a client with no limit on
        an attempt nor on a call, whatever this one has (as in openai-python).

        Args:
            timeout: Seconds for one attempt (a number or a :class:`Timeout`); ``None``:
                no limit.
            max_retries: Retries of a failed attempt (``None`` keeps this client's).
            deadline: Seconds a whole call may take at most; ``None``: no deadline.
            default_headers: Headers added to this client's (same name: the new value;
                ``None`` adds none).
        """
        config = self._config
        changes: dict[str, Any] = {}
        if not isinstance(timeout, NotGiven):
            changes["timeout"] = Timeout.coerce(timeout)
        if max_retries is not None:
            changes["max_retries"] = check_retries(max_retries)
        if not isinstance(deadline, NotGiven):
            changes["deadline"] = None if deadline is None else check_seconds("deadline", deadline)
        if default_headers is not None:
            try:
                added = check_headers("default_headers", default_headers)
            except ValueError as exc:  # a client setting, as in the constructor
                raise ConfigurationError(str(exc)) from None
            changes["default_headers"] = merge_headers(config.default_headers, added)
        clone = object.__new__(type(self))
        clone._config = attrs.evolve(config, **changes) if changes else config
        clone._transport = self._transport.derive(clone._config)
        clone._run_poller = self._poller()  # one poller for the client and its copies
        clone._run_watcher = self._watcher()
        return clone

    @property
    def with_raw_response(self) -> AsyncRawResponses:
        """Every one-request method, returning the HTTP answer itself (a ``RawResponse``).

        ``raw = agent.with_raw_response.get_run(run_id)`` (awaited on ``AsyncAgent``)
        gives ``raw.status_code``, ``raw.headers`` (case-insensitive), ``raw.request_id``,
        ``raw.elapsed`` (seconds), ``raw.content`` / ``raw.text`` / ``raw.json()``, and
        ``raw.parse()``: the ``AgentRun`` that ``get_run`` returns. Error statuses raise as
        usual. It shares this client's session, limiters and settings (``with_options``
        first for others). Methods that make many requests (waiting, ``iter_*``) have no
        raw form.
        """
        clone = object.__new__(type(self))
        clone._config = self._config
        clone._transport = self._transport.derive(self._config, kind=RawTransport)
        clone._run_poller = self._run_poller
        return AsyncRawResponses(clone)

    async def aclose(self) -> None:
        """Close the HTTP session and its connections. Safe to call more than once.

        With a Redis backend that stalls, it returns within about a second, not the Redis
        socket timeout (5 s): Redis calls still in flight get half a second, then are
        cancelled and their connections closed; a quota slot or fleet lease it could not
        give back lapses by itself. Cancelled meanwhile (under a time limit, say), it
        raises at once and the close finishes in the background: cut short, it left the
        session or Redis connections open.
        """
        await finish_anyway(self._close(), "codegen-async close")

    async def _close(self) -> None:
        if self._run_watcher is not None and self._run_watcher is not self._run_poller:
            await self._run_watcher.aclose()
        if self._run_poller is not None:
            await self._run_poller.aclose()
        await self._transport.aclose()

    @property
    def org_id(self) -> int | None:
        """The default organization id."""
        return self._config.org_id

    @property
    def base_url(self) -> str:
        """The API root this client talks to."""
        return self._config.base_url

    @property
    def rate_limits(self) -> RateLimits:
        """The quotas this client keeps to."""
        return self._transport.rate_limits

    @property
    def stats(self) -> TransportStats:
        """Requests sent, retries, 429s received, and seconds spent waiting for quota."""
        return self._transport.stats

    def __repr__(self) -> str:
        config = getattr(self, "_config", None)  # None while __init__ is failing
        if config is None:
            return "AsyncAgent(<not configured>)"
        return f"AsyncAgent(org_id={config.org_id!r}, base_url={config.base_url!r})"

    def _org(self, org_id: int | None) -> int:
        if org_id is None:
            if self._config.org_id is None:
                raise ConfigurationError(
                    "no organization id: pass org_id=... or set the CODEGEN_ORG_ID "
                    "environment variable"
                )
            return self._config.org_id
        return check_id("org_id", org_id)

    def _call(
        self,
        name: str | Endpoint,
        values: Mapping[str, object],
        *,
        body: Any = None,
        options: CallOptions | None = None,
    ) -> Awaitable[Any]:
        # A plain function handing back the transport's coroutine: one coroutine less per
        # call on the hot path. Argument errors still surface where the method is awaited.
        endpoint = ENDPOINTS[name] if isinstance(name, str) else name
        query = check_params(endpoint, values)
        path = fill_path(endpoint.path, values)  # a path without placeholders is unchanged
        return self._transport.request(endpoint, path, query or None, body, options)

    # --- users -------------------------------------------------------------------------
    async def get_current_user(
        self,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> User:
        """Get the user the API token belongs to (``GET /v1/users/me``)."""
        result: User = await self._call(
            "get_current_user",
            {},
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def get_user(
        self,
        user_id: int,
        org_id: int | None = None,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> User:
        """Get one user of an organization.

        Raises:
            NotFoundError: no such user in the organization.
            PermissionDeniedError: the token's user is not a member of the organization.
        """
        values = {"org_id": self._org(org_id), "user_id": user_id}
        result: User = await self._call(
            "get_user", values, options=call_options(timeout, deadline, extra_headers, extra_query)
        )
        return result

    async def get_users(
        self,
        org_id: int | None = None,
        skip: int = 0,
        limit: int = 100,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> Page[User]:
        """Get one page of an organization's users (``limit`` from 1 to 100)."""
        values = {"org_id": self._org(org_id), "skip": skip, "limit": limit}
        result: Page[User] = await self._call(
            "get_users", values, options=call_options(timeout, deadline, extra_headers, extra_query)
        )
        return result

    def iter_users(
        self,
        org_id: int | None = None,
        *,
        page_size: int = 100,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AsyncIterator[User]:
        """Iterate over every user of an organization, fetching pages as needed.

        The call options (``timeout=``, ``deadline=``, ...) apply to each page's request.
        """
        org = self._org(org_id)
        options = _page_options(timeout, deadline, extra_headers, extra_query)
        return iterate_pages(
            lambda skip, limit: self.get_users(org, skip, limit, **options), page_size=page_size
        )

    # --- agent runs ----------------------------------------------------------------------
    async def run(
        self,
        prompt: str,
        *,
        repo_id: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        images: Sequence[str] | None = None,
        model: str | None = None,
        agent_type: AgentType | None = None,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> AgentRun:
        """Start an agent run (quota: 10 a minute).

        Args:
            prompt: What the agent should do.
            repo_id: Repository to work in.
            metadata: JSON object stored with the run.
            images: Images as base64 data URIs (``data:image/png;base64,...``).
            model: Model name; default: the organization's.
            agent_type: ``"codegen"`` or ``"claude_code"``; default: the organization's.

        Raises:
            PaymentRequiredError: the plan's allotment of agent runs is used up.

        This call creates something, so it is retried only when the server cannot have
        acted on it (a 429, or no connection made).
        """
        body: dict[str, Any] = {"prompt": check_prompt("prompt", prompt)}
        if repo_id is not None:
            body["repo_id"] = check_id("repo_id", repo_id)
        if metadata is not None:
            body["metadata"] = check_metadata(metadata)
        if images is not None:
            body["images"] = check_images(images)
        if model is not None:
            body["model"] = check_text("model", model)
        if agent_type is not None:
            body["agent_type"] = check_choice(ENDPOINTS["run"], "agent_type", agent_type)
        values = {"org_id": self._org(org_id)}
        result: AgentRun = await self._call(
            "run",
            values,
            body=body,
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    async def get_run(
        self,
        agent_run_id: int,
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AgentRun:
        """Get an agent run's status and result."""
        values = {
            "org_id": self._org(org_id),
            "agent_run_id": agent_run_id,
        }
        result: AgentRun = await self._call(
            "get_run", values, options=call_options(timeout, deadline, extra_headers, extra_query)
        )
        return result

    async def list_runs(
        self,
        *,
        user_id: int | None = None,
        source_type: SourceType | str | None = None,
        skip: int = 0,
        limit: int = 100,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> Page[AgentRun]:
        """Get one page of an organization's agent runs, newest first.

        Args:
            user_id: Only runs started by this user.
            source_type: Only runs from this source (``SourceType.API``, ...).
        """
        values = {
            "org_id": self._org(org_id),
            "user_id": user_id,
            "source_type": None if source_type is None else str(source_type),
            "skip": skip,
            "limit": limit,
        }
        result: Page[AgentRun] = await self._call(
            "list_runs", values, options=call_options(timeout, deadline, extra_headers, extra_query)
        )
        return result

    def iter_runs(
        self,
        *,
        user_id: int | None = None,
        source_type: SourceType | str | None = None,
        org_id: int | None = None,
        page_size: int = 100,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AsyncIterator[AgentRun]:
        """Iterate over an organization's agent runs, newest first, across pages.

        The call options (``timeout=``, ``deadline=``, ...) apply to each page's request.
        """
        org = self._org(org_id)
        options = _page_options(timeout, deadline, extra_headers, extra_query)
        return iterate_pages(
            lambda skip, limit: self.list_runs(
                user_id=user_id,
                source_type=source_type,
                skip=skip,
                limit=limit,
                org_id=org,
                **options,
            ),
            page_size=page_size,
        )

    async def resume_run(
        self,
        agent_run_id: int,
        prompt: str,
        *,
        images: Sequence[str] | None = None,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> AgentRun:
        """Resume a paused agent run with a new prompt."""
        body: dict[str, Any] = {
            "agent_run_id": check_id("agent_run_id", agent_run_id),
            "prompt": check_prompt("prompt", prompt),
        }
        if images is not None:
            body["images"] = check_images(images)
        values = {"org_id": self._org(org_id)}
        result: AgentRun = await self._call(
            "resume_run",
            values,
            body=body,
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    async def _stop_call(
        self,
        name: str,
        agent_run_id: int,
        before_card_order_id: str | None,
        after_card_order_id: str | None,
        org_id: int | None,
        options: CallOptions | None,
    ) -> Any:
        body: dict[str, Any] = {"agent_run_id": check_id("agent_run_id", agent_run_id)}
        if before_card_order_id is not None:
            body["before_card_order_id"] = check_text("before_card_order_id", before_card_order_id)
        if after_card_order_id is not None:
            body["after_card_order_id"] = check_text("after_card_order_id", after_card_order_id)
        return await self._call(name, {"org_id": self._org(org_id)}, body=body, options=options)

    async def ban_all_checks(
        self,
        agent_run_id: int,
        *,
        before_card_order_id: str | None = None,
        after_card_order_id: str | None = None,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> Any:
        """Ban all checks of the run's pull request and stop its agents."""
        return await self._stop_call(
            "ban_all_checks",
            agent_run_id,
            before_card_order_id,
            after_card_order_id,
            org_id,
            call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )

    async def unban_all_checks(
        self,
        agent_run_id: int,
        *,
        before_card_order_id: str | None = None,
        after_card_order_id: str | None = None,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> Any:
        """Lift a ban on the run's pull request checks."""
        return await self._stop_call(
            "unban_all_checks",
            agent_run_id,
            before_card_order_id,
            after_card_order_id,
            org_id,
            call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )

    async def remove_from_pr(
        self,
        agent_run_id: int,
        *,
        before_card_order_id: str | None = None,
        after_card_order_id: str | None = None,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> Any:
        """Remove Codegen from the run's pull request (same effect as banning its checks)."""
        return await self._stop_call(
            "remove_from_pr",
            agent_run_id,
            before_card_order_id,
            after_card_order_id,
            org_id,
            call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )

    async def get_run_logs(
        self,
        agent_run_id: int,
        *,
        skip: int = 0,
        limit: int = 100,
        reverse: bool = False,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AgentRunWithLogs:
        """Get an agent run with one page of its logs (alpha API; quota 60 a minute)."""
        values = {
            "org_id": self._org(org_id),
            "agent_run_id": agent_run_id,
            "skip": skip,
            "limit": limit,
            "reverse": reverse,
        }
        result: AgentRunWithLogs = await self._call(
            "get_run_logs",
            values,
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def iter_run_logs(
        self,
        agent_run_id: int,
        *,
        reverse: bool = False,
        org_id: int | None = None,
        page_size: int = 100,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AsyncIterator[AgentRunLog]:
        """Iterate over every log entry of an agent run, in order, across pages.

        The call options (``timeout=``, ``deadline=``, ...) apply to each page's request.
        """
        options = _page_options(timeout, deadline, extra_headers, extra_query)
        skip = 0
        while True:
            page = await self.get_run_logs(
                agent_run_id,
                skip=skip,
                limit=page_size,
                reverse=reverse,
                org_id=org_id,
                **options,
            )
            for entry in page.logs:
                yield entry
            skip += len(page.logs)
            total = page.total_logs
            if not page.logs or (total is not None and skip >= total):
                return

    # --- sandbox and setup commands ---------------------------------------------------
    async def analyze_sandbox_logs(
        self,
        sandbox_id: int,
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AnalyzeLogsResponse:
        """Start an agent that analyses a sandbox's setup logs (quota: 5 a minute).

        Poll ``get_run(response.agent_run_id)`` (or ``wait_for_run``) for the result.

        Raises:
            BadRequestError: the sandbox has no logs to analyse.
            NotFoundError: no such sandbox.
        """
        values = {"org_id": self._org(org_id), "sandbox_id": sandbox_id}
        result: AnalyzeLogsResponse = await self._call(
            "analyze_sandbox_logs",
            values,
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def generate_setup_commands(
        self,
        repo_id: int,
        prompt: str | None = None,
        trigger_source: str = "setup-commands",
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> SetupCommandsResponse:
        """Start an agent that writes setup commands for a repository (quota: 5 a minute).

        Raises:
            NotFoundError: no such repository.
        """
        body: dict[str, Any] = {
            "repo_id": check_id("repo_id", repo_id),
            "trigger_source": check_text("trigger_source", trigger_source),
        }
        if prompt is not None:
            body["prompt"] = check_prompt("prompt", prompt)
        values = {"org_id": self._org(org_id)}
        result: SetupCommandsResponse = await self._call(
            "generate_setup_commands",
            values,
            body=body,
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    # --- Slack ---------------------------------------------------------------------------
    async def generate_slack_connect_token(
        self,
        org_id: int | None = None,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> SlackConnectToken:
        """Generate a single-use token that links a Slack account; it expires in 10 minutes.

        Send ``token.connect_message`` to the Codegen bot in a Slack DM.
        """
        body = {"org_id": self._org(org_id)}
        result: SlackConnectToken = await self._call(
            "generate_slack_connect_token",
            {},
            body=body,
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    # --- organizations, repositories, integrations -----------------------------------
    async def get_organizations(
        self,
        skip: int = 0,
        limit: int = 100,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> Page[Organization]:
        """Get one page of the organizations the token's user belongs to."""
        result: Page[Organization] = await self._call(
            "get_organizations",
            {"skip": skip, "limit": limit},
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    def iter_organizations(
        self,
        *,
        page_size: int = 100,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AsyncIterator[Organization]:
        """Iterate over every organization of the token's user.

        The call options (``timeout=``, ``deadline=``, ...) apply to each page's request.
        """
        options = _page_options(timeout, deadline, extra_headers, extra_query)
        return iterate_pages(
            lambda skip, limit: self.get_organizations(skip, limit, **options),
            page_size=page_size,
        )

    async def get_repositories(
        self,
        org_id: int | None = None,
        skip: int = 0,
        limit: int = 100,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> Page[Repository]:
        """Get one page of an organization's repositories."""
        values = {"org_id": self._org(org_id), "skip": skip, "limit": limit}
        result: Page[Repository] = await self._call(
            "get_repositories",
            values,
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    def iter_repositories(
        self,
        org_id: int | None = None,
        *,
        page_size: int = 100,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> AsyncIterator[Repository]:
        """Iterate over every repository of an organization.

        The call options (``timeout=``, ``deadline=``, ...) apply to each page's request.
        """
        org = self._org(org_id)
        options = _page_options(timeout, deadline, extra_headers, extra_query)
        return iterate_pages(
            lambda skip, limit: self.get_repositories(org, skip, limit, **options),
            page_size=page_size,
        )

    async def get_integrations(
        self,
        org_id: int | None = None,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> OrganizationIntegrations:
        """Get the status of every integration of an organization."""
        result: OrganizationIntegrations = await self._call(
            "get_integrations",
            {"org_id": self._org(org_id)},
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def get_check_suite_settings(
        self,
        repo_id: int,
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> CheckSuiteSettings:
        """Get a repository's check-suite settings."""
        values = {"org_id": self._org(org_id), "repo_id": repo_id}
        result: CheckSuiteSettings = await self._call(
            "get_check_suite_settings",
            values,
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def update_check_suite_settings(
        self,
        repo_id: int,
        settings: CheckSuiteSettingsUpdate,
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """Update a repository's check-suite settings; fields left ``None`` are unchanged."""
        if not isinstance(settings, CheckSuiteSettingsUpdate):
            raise TypeError(
                f"settings must be a CheckSuiteSettingsUpdate, got {type(settings).__name__}"
            )
        if settings.check_retry_count is not None:
            check_range(
                ENDPOINTS["update_check_suite_settings"],
                "check_retry_count",
                settings.check_retry_count,
                label="settings.check_retry_count",
            )
        check_collections(
            ENDPOINTS["update_check_suite_settings"],
            attrs.asdict(settings, recurse=False),
            prefix="settings.",
        )
        body = {k: v for k, v in _fields(settings).items() if v is not None}
        values = {"org_id": self._org(org_id), "repo_id": repo_id}
        result: dict[str, Any] = await self._call(
            "update_check_suite_settings",
            values,
            body=body,
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    # --- pull requests -------------------------------------------------------------------
    async def edit_pull_request(
        self,
        repo_id: int,
        pr_id: int,
        state: PullRequestState,
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> EditPullRequestResult:
        """Move a pull request to ``open``, ``closed``, ``draft`` or ``ready_for_review``."""
        values = {
            "org_id": self._org(org_id),
            "repo_id": repo_id,
            "pr_id": pr_id,
        }
        result: EditPullRequestResult = await self._call(
            "edit_pull_request",
            values,
            body={"state": check_choice(ENDPOINTS["edit_pull_request"], "state", state)},
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    async def edit_pull_request_simple(
        self,
        pr_id: int,
        state: PullRequestState,
        *,
        org_id: int | None = None,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> EditPullRequestResult:
        """Move a pull request to a new state, by pull request id alone."""
        values = {"org_id": self._org(org_id), "pr_id": pr_id}
        result: EditPullRequestResult = await self._call(
            "edit_pull_request_simple",
            values,
            body={"state": check_choice(ENDPOINTS["edit_pull_request_simple"], "state", state)},
            options=call_options(timeout, deadline, extra_headers, extra_query, extra_body),
        )
        return result

    # --- CLI, MCP, OAuth -----------------------------------------------------------------
    async def get_cli_rules(
        self,
        org_id: int | None = None,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> CliRules:
        """Get organization rules and the user's custom prompt for CLI agents."""
        result: CliRules = await self._call(
            "get_cli_rules",
            {"org_id": self._org(org_id)},
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def get_mcp_providers(
        self,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> list[OAuthProvider]:
        """List the MCP providers."""
        result: list[OAuthProvider] = await self._call(
            "get_mcp_providers",
            {},
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )
        return result

    async def get_oauth_token_status(
        self,
        org_id: int | None = None,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> Any:
        """The providers with an active OAuth token for the user and organization (raw JSON)."""
        return await self._call(
            "get_oauth_token_status",
            {"org_id": self._org(org_id)},
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )

    async def revoke_oauth_token(
        self,
        provider: str,
        org_id: int | None = None,
        *,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
    ) -> Any:
        """Revoke the user's OAuth tokens for ``provider`` in the organization (raw JSON)."""
        values = {"provider": check_text("provider", provider), "org_id": self._org(org_id)}
        return await self._call(
            "revoke_oauth_token",
            values,
            options=call_options(timeout, deadline, extra_headers, extra_query),
        )

    # --- any other operation ------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = None,
        json: Any = None,
        route: str | None = None,
        quota: Quota | NotGiven | None = NOT_GIVEN,
        timeout: TimeoutArg = NOT_GIVEN,
        deadline: DeadlineArg = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send an operation the SDK does not know yet; return the decoded JSON answer.

        Same auth, retries (on server errors only for GET, PUT and DELETE), typed errors,
        deadline and logging as the SDK's own methods.
        ``await agent.request("GET", f"/v1/organizations/{org}/new-thing")``.

        Rate limiting follows the server's count, per route template: a path of an
        operation the SDK knows shares that operation's quota; any other keeps
        ``quota`` on ``route`` (default: the standard 60 requests per 30 s, as this
        client keeps it: ``rate_limits.default``, scaled, or off).

        Args:
            method: ``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
            path: The path under the base URL, starting with ``/`` (no query string).
            params: Query parameters (a list value repeats the parameter).
            json: The JSON body, if any.
            route: The path's template (``"/v1/things/{thing_id}"``), so that calls on
                several ids share one quota; default: the path as given.
            quota: The route's quota (a :class:`Quota`); ``None``: no client-side limit.

        Raises:
            ValueError: a method, path or route that cannot be sent (or do not match).
            APIStatusError: the server answered 4xx/5xx (a subclass per status).
        """
        endpoint = generic_endpoint(method, path, route)
        query = None if params is None else check_extra_query("params", params)
        options = call_options(timeout, deadline, extra_headers)
        limits = generic_limits(self._transport.rate_limits, endpoint, quota)
        transport = self._transport
        if limits is not transport.rate_limits:
            transport = transport.derive(self._config, limits)
        return await transport.request(endpoint, path, query or None, json, options)

    # --- polling: waiting on runs (one poller per client; see _polling/) ---------------
    _run_poller: RunPoller | None = None

    def _poller(self) -> RunPoller:
        if self._run_poller is None:
            self._run_poller = RunPoller(ClientRunSource(self, self._fetch_json))
        return self._run_poller

    _run_watcher: RunPoller | FleetWatcher | None = None

    def _watcher(self) -> RunPoller | FleetWatcher:
        """Who the waits subscribe to: the fleet's watcher over Redis, or the own poller."""
        if self._run_watcher is None:
            backend = None
            if self._fleet_polling:
                backend = REGISTRY.redis_backend(self._config.rate_limit_backend)
            if backend is None:
                self._run_watcher = self._poller()
            else:
                source = self._poller().source
                self._run_watcher = FleetWatcher(
                    self._poller(),
                    source,
                    backend,
                    fleet_fingerprint(self._config.token, self._config.base_url),
                    FleetSettings.for_window(source.quota("get_run").window),
                )
        return self._run_watcher

    def _fetch_json(self, endpoint: Endpoint, values: Mapping[str, object]) -> Awaitable[Any]:
        # The run source's seam (``_polling.FetchJson``): a request, answered undecoded.
        return self._call(endpoint, values)

    async def wait_for_run(
        self,
        agent_run_id: int,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        org_id: int | None = None,
    ) -> FinishedRun:
        """Wait until an agent run has finished (completed, failed or cancelled); return it.

        Polls start at 0.5 s apart and back off to 5 s (1/60 and 1/6 of the ``get_run``
        quota window, so they scale with ``RateLimits.documented(scale)``). Concurrent waits
        on one client share one poller, which covers many runs with list pages.

        Args:
            agent_run_id: The run to wait for.
            timeout: Seconds to wait at most; ``None`` (default) waits as long as it takes.
            poll_interval: Poll every this many seconds instead of backing off.
            org_id: The run's organization; default: the client's.

        Returns:
            The finished run; check ``run.status`` (``"completed"``, ``"failed"``, ...).

        Raises:
            WaitTimeoutError: ``timeout`` passed first (also a ``TimeoutError``; it carries
                ``last_status``).
            NotFoundError: the run does not exist, or disappeared while waiting.
            APIResponseValidationError: the run's answer could not be parsed.

        A paused run (waiting for :meth:`resume_run`) has not finished, so the wait goes on;
        :meth:`watch_run` shows the pause. Cancelling the call stops its polling; no task
        is left behind.
        """
        org = self._org(org_id)
        return await _polling.wait_for_run(
            self._watcher(), org, agent_run_id, timeout=timeout, poll_interval=poll_interval
        )

    def watch_run(
        self,
        agent_run_id: int,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        org_id: int | None = None,
    ) -> AsyncIterator[AgentRun]:
        """Iterate over an agent run's states: the run each time its status changes.

        The first item is the run as first seen; the last is the run in its terminal status
        (completed, failed or cancelled), after which the iteration ends.

        Args:
            agent_run_id: The run to watch.
            timeout: Seconds to watch at most; ``None`` (default) for no limit.
            poll_interval: Poll every this many seconds instead of backing off.
            org_id: The run's organization; default: the client's.

        Raises:
            WaitTimeoutError: ``timeout`` passed before the run finished.
            NotFoundError: the run does not exist, or disappeared while watched.
        """
        org = self._org(org_id)
        check_id("agent_run_id", agent_run_id)
        _polling.check_wait_args(timeout, poll_interval)
        return _polling.watch_run(
            self._watcher(), org, agent_run_id, timeout=timeout, poll_interval=poll_interval
        )

    async def wait_for_runs(
        self,
        agent_run_ids: Iterable[int],
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_update: Callable[[AgentRun], Any] | None = None,
        progress: bool = False,
        poll_share: float = DEFAULT_POLL_SHARE,
        org_id: int | None = None,
    ) -> dict[int, FinishedRun]:
        """Wait until every run has finished; return them by id, in the order asked.

        One poller serves every wait of the client: it reads the run list a page (100 runs)
        at a time, filtered by the token's user, and calls ``get_run`` only where that costs
        fewer requests, spending at most ``poll_share`` of each route's quota.

        Args:
            agent_run_ids: The runs to wait for (duplicates are waited on once).
            timeout: Seconds to wait for all of them at most; ``None`` for no limit.
            poll_interval: Poll each run every this many seconds instead of backing off.
            on_update: Called with a run each time its status changes (a function or a
                coroutine function); an exception it raises ends the wait.
            progress: Show a tqdm progress bar (``tqdm.auto``: a widget in notebooks); needs
                ``pip install 'codegen-async[progress]'``, else a warning and no bar.
            poll_share: Share of the quota polling may spend, in (0, 1]; the rest stays for
                your other calls. Concurrent waits use the smallest share any of them asks.
            org_id: The runs' organization; default: the client's.

        Returns:
            ``{agent_run_id: run}`` for every run, each in a terminal status.

        Raises:
            RunWaitTimeoutError: ``timeout`` passed first (a ``RunWaitError`` and a
                ``TimeoutError``); ``.runs`` holds the finished runs, ``.errors`` a
                ``WaitTimeoutError`` for each unfinished one.
            RunWaitError: some runs could not be waited on (e.g. 404: they disappeared);
                raised once every other run has finished, with ``.errors`` by id and
                ``.runs``.
        """
        org = self._org(org_id)
        return await _polling.wait_for_runs(
            self._watcher(),
            org,
            agent_run_ids,
            timeout=timeout,
            poll_interval=poll_interval,
            on_update=on_update,
            progress=progress,
            poll_share=poll_share,
        )

    def as_completed(
        self,
        agent_run_ids: Iterable[int],
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_update: Callable[[AgentRun], Any] | None = None,
        progress: bool = False,
        poll_share: float = DEFAULT_POLL_SHARE,
        org_id: int | None = None,
    ) -> AsyncIterator[FinishedRun]:
        """Iterate over runs as they finish, in the order the poller sees them finish.

        Takes the same arguments as :meth:`wait_for_runs` and shares its poller. A run that
        ends in error does not stop the iteration: once every other run has been yielded,
        it raises :class:`RunWaitError` (or :class:`RunWaitTimeoutError` at the deadline)
        with each failed run's error in ``.errors``.
        """
        org = self._org(org_id)
        _polling.check_wait_args(timeout, poll_interval, poll_share)
        return _polling.as_completed(
            self._watcher(),
            org,
            agent_run_ids,
            timeout=timeout,
            poll_interval=poll_interval,
            on_update=on_update,
            progress=progress,
            poll_share=poll_share,
        )

    async def run_and_wait(
        self,
        prompt: str,
        *,
        repo_id: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        images: Sequence[str] | None = None,
        model: str | None = None,
        agent_type: AgentType | None = None,
        timeout: float | None = None,
        poll_interval: float | None = None,
        org_id: int | None = None,
    ) -> FinishedRun:
        """Start an agent run and wait until it has finished; return the finished run.

        The arguments are :meth:`run`'s, except that ``timeout`` bounds the wait (as in
        :meth:`wait_for_run`), not the request.

        Raises:
            WaitTimeoutError: the run had not finished after ``timeout`` seconds.
        """
        _polling.check_wait_args(timeout, poll_interval)  # before a run is started
        run = await self.run(
            prompt,
            repo_id=repo_id,
            metadata=metadata,
            images=images,
            model=model,
            agent_type=agent_type,
            org_id=org_id,
        )
        if _polling.is_finished(run):
            return run
        return await self.wait_for_run(
            run.id, timeout=timeout, poll_interval=poll_interval, org_id=org_id
        )

    async def analyze_sandbox_logs_and_wait(
        self,
        sandbox_id: int,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        org_id: int | None = None,
    ) -> FinishedRun:
        """Analyse a sandbox's setup logs and wait for the analysis; return the finished run.

        The analysis is in ``run.result`` when ``run.status == "completed"``.

        Raises:
            BadRequestError: the sandbox has no logs to analyse.
            NotFoundError: no such sandbox.
            WaitTimeoutError: the analysis had not finished after ``timeout`` seconds.
        """
        _polling.check_wait_args(timeout, poll_interval)  # before a run is started
        started = await self.analyze_sandbox_logs(sandbox_id, org_id=org_id)
        return await self.wait_for_run(
            started.agent_run_id, timeout=timeout, poll_interval=poll_interval, org_id=org_id
        )

    async def generate_setup_commands_and_wait(
        self,
        repo_id: int,
        prompt: str | None = None,
        trigger_source: str = "setup-commands",
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        org_id: int | None = None,
    ) -> FinishedRun:
        """Generate setup commands for a repository and wait for them; return the finished run.

        The commands are in ``run.result`` when ``run.status == "completed"``.

        Raises:
            NotFoundError: no such repository.
            WaitTimeoutError: the generation had not finished after ``timeout`` seconds.
        """
        _polling.check_wait_args(timeout, poll_interval)  # before a run is started
        started = await self.generate_setup_commands(repo_id, prompt, trigger_source, org_id=org_id)
        return await self.wait_for_run(
            started.agent_run_id, timeout=timeout, poll_interval=poll_interval, org_id=org_id
        )


class _PageOptions(TypedDict, total=False):
    timeout: TimeoutArg
    deadline: DeadlineArg
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, object] | None


def _page_options(
    timeout: TimeoutArg,
    deadline: DeadlineArg,
    extra_headers: Mapping[str, str] | None,
    extra_query: Mapping[str, object] | None,
) -> _PageOptions:
    """An iteration's call options, checked now (not at the first page), for each page."""
    call_options(timeout, deadline, extra_headers, extra_query)
    return {
        "timeout": timeout,
        "deadline": deadline,
        "extra_headers": extra_headers,
        "extra_query": extra_query,
    }


def _fields(obj: CheckSuiteSettingsUpdate) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(obj)
    return data
