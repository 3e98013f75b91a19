"""Typed models of the Codegen API's requests and responses.

Every class mirrors one schema of the public OpenAPI description (named in its docstring),
with the same field names and the same nullability. Models are plain attrs classes: parsing
and serialisation live in one private cattrs converter (``codegen_async._converter``), so the
models stay free of I/O and of wire concerns.

Parsing is lenient where the API may grow: a field the SDK does not know is kept, under its
wire name, in the model's :attr:`~_Model.model_extra` (and written back by ``to_dict()``), and
enumerations (roles, run statuses, source types) keep values they do not know instead of
failing. Keeping unknown fields costs one subset test of the answer's keys per object; the
dictionary is built only when there is something unknown.

Every response model derives from :class:`_Model`: ``to_dict()`` / ``from_dict()`` (the wire
form, for round trips), ``to_json()``, ``to_display_dict()`` (the documentation's words, for
people) and ``_repr_html_`` (a table in Jupyter). This module stays a leaf (it imports nothing
of the SDK): those methods call the functions the converter installs here when it loads
(:func:`install_codec`), which it always has by the time a model exists.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import attrs

__all__ = [
    "AgentRun",
    "AgentRunLog",
    "AgentRunWithLogs",
    "AgentType",
    "AnalyzeLogsResponse",
    "CheckSuiteSettings",
    "CheckSuiteSettingsUpdate",
    "CliRules",
    "EditPullRequestResult",
    "FinishedRun",
    "GithubPullRequest",
    "IntegrationStatus",
    "OAuthProvider",
    "Organization",
    "OrganizationIntegrations",
    "OrganizationSettings",
    "Page",
    "PullRequestState",
    "Repository",
    "RunStatus",
    "SetupCommandsResponse",
    "SlackConnectToken",
    "SourceType",
    "User",
    "UserRole",
    "parse_timestamp",
]

T = TypeVar("T")

JSONObject = dict[str, Any]


def parse_timestamp(value: str | None) -> datetime | None:
    """Parse the API's ISO 8601 timestamps into an aware ``datetime``.

    A naive timestamp is taken as UTC; a value that is not ISO 8601 gives ``None`` (the API
    documents these fields as free strings, so an unexpected shape must not raise).
    """
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


class RunStatus(str):
    """The status of an agent run, comparable to the documentation's lower-case words.

    The service sends upper-case words (``ACTIVE``, ``COMPLETE``, ``ERROR``, ``CANCELLED``);
    the documentation uses lower-case ones (``running``, ``completed``, ``failed``,
    ``cancelled``). A ``RunStatus`` holds the documentation's word, so
    ``run.status == "completed"`` holds whichever spelling arrived, and keeps what the server
    sent in :attr:`raw`. A value it does not know is kept as sent and is never terminal.
    """

    raw: str

    PENDING: ClassVar[RunStatus]
    RUNNING: ClassVar[RunStatus]
    PAUSED: ClassVar[RunStatus]
    COMPLETED: ClassVar[RunStatus]
    FAILED: ClassVar[RunStatus]
    CANCELLED: ClassVar[RunStatus]

    _ALIASES: ClassVar[dict[str, str]] = {
        "pending": "pending",
        "queued": "pending",
        "evaluation": "running",
        "active": "running",
        "running": "running",
        "in_progress": "running",
        "paused": "paused",
        "complete": "completed",
        "completed": "completed",
        "succeeded": "completed",
        "success": "completed",
        "failed": "failed",
        "failure": "failed",
        "error": "failed",
        "errored": "failed",
        "cancelled": "cancelled",
        "canceled": "cancelled",
        "stopped": "cancelled",
    }
    _TERMINAL: ClassVar[frozenset[str]] = frozenset({"completed", "failed", "cancelled"})

    def __new__(cls, value: str) -> RunStatus:
        canonical = cls._ALIASES.get(value.strip().lower(), value)
        self = super().__new__(cls, canonical)
        self.raw = value
        return self

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (completed, failed or cancelled)."""
        return str.__str__(self) in self._TERMINAL

    @property
    def is_known(self) -> bool:
        """Whether the value is one of the statuses this SDK knows."""
        return str.__str__(self) in self._ALIASES.values()

    def __repr__(self) -> str:
        if self.raw != str.__str__(self):
            return f"RunStatus({str.__str__(self)!r}, raw={self.raw!r})"
        return f"RunStatus({str.__str__(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunStatus, (self.raw,))


RunStatus.PENDING = RunStatus("pending")
RunStatus.RUNNING = RunStatus("running")
RunStatus.PAUSED = RunStatus("paused")
RunStatus.COMPLETED = RunStatus("completed")
RunStatus.FAILED = RunStatus("failed")
RunStatus.CANCELLED = RunStatus("cancelled")


class _OpenEnum(str, Enum):
    """A string enumeration open to values it does not know.

    ``UserRole("OWNER")`` gives a pseudo-member (not listed, ``is_known`` false) instead of
    raising, so a field can be typed with the enumeration, which editors complete, and still
    keep whatever the server sends. Members compare equal to their string values.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        return pseudo

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_known(self) -> bool:
        """Whether the value is one this SDK declares (not a newer one kept as sent)."""
        return self._value_ in type(self)._value2member_map_


class UserRole(_OpenEnum):
    """A user's role in an organization. Unknown roles are kept (``UserRole("OWNER")``)."""

    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    MEMBER = "MEMBER"


class SourceType(_OpenEnum):
    """Where an agent run came from (``ApiAgentRunSourceType``). Unknown values are kept."""

    LOCAL = "LOCAL"
    SLACK = "SLACK"
    GITHUB = "GITHUB"
    GITHUB_CHECK_SUITE = "GITHUB_CHECK_SUITE"
    GITHUB_PR_REVIEW = "GITHUB_PR_REVIEW"
    LINEAR = "LINEAR"
    API = "API"
    CHAT = "CHAT"
    JIRA = "JIRA"
    CLICKUP = "CLICKUP"
    MONDAY = "MONDAY"
    SETUP_COMMANDS = "SETUP_COMMANDS"


AgentType = Literal["codegen", "claude_code"]
"""The agent types ``run()`` accepts."""

PullRequestState = Literal["open", "closed", "draft", "ready_for_review"]
"""The states a pull request can be moved to."""


class _CreatedAt:
    """Mixin: ``created_at`` as the API sent it, and as a ``datetime``."""

    __slots__ = ()
    created_at: str | None

    @property
    def created_at_datetime(self) -> datetime | None:
        """``created_at`` as an aware ``datetime`` (``None`` if absent or not ISO 8601)."""
        return parse_timestamp(self.created_at)


_M = TypeVar("_M", bound="_Model")

_codec: dict[str, Callable[..., Any]] = {}


def install_codec(**functions: Callable[..., Any]) -> None:
    """Give the models their wire and display functions (called by the converter).

    Keys: ``structure(data, cls)``, ``unstructure(model)``, ``display(model)`` and
    ``html(model)``.
    """
    _codec.update(functions)


def _extra_eq_key(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    # ``model_extra={}`` and no extras at all are the same model.
    return extra or None


@attrs.frozen
class _Model:
    """Base of every response model: unknown fields, wire and display forms, notebook view."""

    _model_extra: dict[str, Any] | None = attrs.field(
        default=None, kw_only=True, repr=False, eq=_extra_eq_key, hash=False
    )

    @property
    def model_extra(self) -> dict[str, Any]:
        """The fields of the answer this SDK does not know, under their wire names.

        Empty when the server sent nothing new. ``to_dict()`` writes them back, so they
        survive a round trip; pass ``model_extra={...}`` to build a model with them.
        """
        return self._model_extra if self._model_extra is not None else {}

    def to_dict(self) -> dict[str, Any]:
        """The model as the API sends it: wire names and values, unknown fields included.

        A run's status is the server's word here (``"ERROR"``), so that
        ``type(m).from_dict(m.to_dict()) == m``; for people, see :meth:`to_display_dict`.
        """
        data: dict[str, Any] = _codec["unstructure"](self)
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON document (``indent=None``: on one line)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_display_dict(self) -> dict[str, Any]:
        """JSON-ready data for people: :meth:`to_dict`, except that a run's ``status`` is
        the documentation's word (``"failed"``) with the server's (``"ERROR"``) beside it
        as ``status_raw``. Tables, notebooks and the CLI's ``--json`` show this form.
        """
        data: dict[str, Any] = _codec["display"](self)
        return data

    @classmethod
    def from_dict(cls: type[_M], data: dict[str, Any]) -> _M:
        """Build the model from its wire form (:meth:`to_dict`'s output, or an API answer).

        Raises:
            ValueError: ``data`` does not fit the model; the message names the field.
        """
        result: _M = _codec["structure"](data, cls)
        return result

    def _repr_html_(self) -> str:
        html: str = _codec["html"](self)
        return html


class _HasStatus:
    """Mixin: the server's own word for a run's status, beside the documentation's."""

    __slots__ = ()
    status: RunStatus | None

    @property
    def status_raw(self) -> str | None:
        """The status exactly as the server sent it (``"ERROR"``), or ``None``.

        ``status`` itself is the documentation's word (``"failed"``); ``status == "ERROR"``
        is false, ``status_raw == "ERROR"`` is true.
        """
        return None if self.status is None else self.status.raw


@attrs.frozen
class User(_Model):
    """A user (schema ``UserResponse``)."""

    id: int
    github_user_id: str
    github_username: str
    email: str | None = None
    avatar_url: str | None = None
    full_name: str | None = None
    role: UserRole | None = None
    _is_admin: bool | None = attrs.field(default=None, alias="is_admin", repr=False)

    @property
    def is_admin(self) -> bool | None:
        """Deprecated by the API: use :attr:`role` (``UserRole.ADMIN``) instead."""
        warnings.warn(
            "User.is_admin is deprecated by the Codegen API; use User.role instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._is_admin


@attrs.frozen
class Page(_Model, Generic[T]):
    """One page of a paginated list: ``items`` plus the position in the whole list."""

    items: list[T]
    total: int
    page: int
    size: int
    pages: int

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_next(self) -> bool:
        """Whether another page follows this one."""
        return self.page < self.pages

    @classmethod
    def from_dict(cls, data: dict[str, Any], item_type: type[Any] | None = None) -> Page[Any]:
        """Build a page from its wire form; ``item_type`` (``AgentRun``, ...) types the items.

        Without ``item_type`` the items stay as they are in ``data`` (plain dicts).

        Raises:
            ValueError: ``data`` does not fit; the message names the field.
        """
        target: Any = Page[Any] if item_type is None else Page[item_type]  # type: ignore[valid-type]
        result: Page[Any] = _codec["structure"](data, target)
        return result


@attrs.frozen
class GithubPullRequest(_Model, _CreatedAt):
    """A pull request opened by an agent run (schema ``GithubPullRequestResponse``)."""

    id: int
    created_at: str
    title: str | None = None
    url: str | None = None
    head_branch_name: str | None = None


@attrs.frozen
class AgentRun(_Model, _HasStatus, _CreatedAt):
    """An agent run (schema ``AgentRunResponse``).

    ``status`` is a :class:`RunStatus`: it equals the documentation's lower-case words
    whichever spelling the server used.
    """

    id: int
    organization_id: int
    status: RunStatus | None = None
    created_at: str | None = None
    web_url: str | None = None
    result: str | None = None
    summary: str | None = None
    source_type: SourceType | None = None
    github_pull_requests: list[GithubPullRequest] | None = None
    metadata: dict[str, Any] | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the run has finished (completed, failed or cancelled)."""
        return self.status is not None and self.status.is_terminal


if TYPE_CHECKING:

    class FinishedRun(AgentRun):
        """An :class:`AgentRun` that has finished: its ``status`` is always set.

        What ``wait_for_run``, ``wait_for_runs``, ``as_completed`` and the ``*_and_wait``
        helpers return, so ``run.status.raw`` needs no ``None`` check. At run time it is
        :class:`AgentRun` itself (``isinstance`` and equality unchanged); only type checkers
        see the narrower ``status``.
        """

        status: RunStatus

else:
    FinishedRun = AgentRun


@attrs.frozen
class AgentRunLog(_Model, _CreatedAt):
    """One log entry of an agent run (schema ``AgentRunLogResponse``)."""

    agent_run_id: int
    created_at: str | None = None
    tool_name: str | None = None
    message_type: str | None = None
    thought: str | None = None
    observation: dict[str, Any] | str | None = None
    tool_input: dict[str, Any] | None = None
    tool_output: dict[str, Any] | None = None


@attrs.frozen
class AgentRunWithLogs(_Model, _HasStatus, _CreatedAt):
    """An agent run with one page of its logs (schema ``AgentRunWithLogsResponse``)."""

    id: int
    organization_id: int
    logs: list[AgentRunLog]
    status: RunStatus | None = None
    created_at: str | None = None
    web_url: str | None = None
    result: str | None = None
    metadata: dict[str, Any] | None = None
    total_logs: int | None = None
    page: int | None = None
    size: int | None = None
    pages: int | None = None


@attrs.frozen
class AnalyzeLogsResponse(_Model, _HasStatus):
    """The answer to starting a sandbox log analysis (schema ``AnalyzeLogsResponse``)."""

    agent_run_id: int
    status: RunStatus
    message: str


@attrs.frozen
class SetupCommandsResponse(_Model, _HasStatus):
    """The answer to starting setup-command generation (schema ``SetupCommandsResponse``)."""

    agent_run_id: int
    status: RunStatus
    url: str


SLACK_TOKEN_TTL = timedelta(minutes=10)


@attrs.frozen
class SlackConnectToken(_Model):
    """A Slack connect token (schema ``GenerateTokenResponse``).

    The token is single use and expires ``expires_in_minutes`` after it was issued (10
    minutes); :attr:`expires_at` is computed from the moment the response arrived.
    Send :attr:`connect_message` to the Codegen bot in a Slack DM. The token is hidden from
    ``repr()`` and from the notebook view so that it does not end up in logs or shared
    notebooks; ``to_dict()`` keeps it (it is the answer's data).
    """

    token: str = attrs.field(repr=False, metadata={"secret": True})
    message: str
    expires_in_minutes: int
    # Local, not part of the value: a token rebuilt from ``to_dict()`` equals the original.
    received_at: datetime = attrs.field(factory=lambda: datetime.now(timezone.utc), eq=False)
    single_use: ClassVar[bool] = True

    @property
    def expires_at(self) -> datetime:
        """When the token stops working (aware UTC datetime).

        A lifetime beyond what ``datetime`` can hold gives its largest (or smallest) value
        rather than an ``OverflowError``.
        """
        try:
            return self.received_at + timedelta(minutes=self.expires_in_minutes)
        except OverflowError:
            edge = datetime.max if self.expires_in_minutes > 0 else datetime.min
            return edge.replace(tzinfo=timezone.utc)

    @property
    def is_expired(self) -> bool:
        """Whether :attr:`expires_at` has passed."""
        return datetime.now(timezone.utc) >= self.expires_at

    @property
    def connect_message(self) -> str:
        """The exact text to send to the Codegen bot: ``Connect my account: {token}``."""
        return f"Connect my account: {self.token}"


@attrs.frozen
class OrganizationSettings(_Model):
    """An organization's settings (schema ``OrganizationSettings``)."""

    enable_pr_creation: bool = True
    enable_rules_detection: bool = True


@attrs.frozen
class Organization(_Model):
    """An organization (schema ``OrganizationResponse``)."""

    id: int
    name: str
    settings: OrganizationSettings = attrs.field(factory=OrganizationSettings)


@attrs.frozen
class Repository(_Model):
    """A repository (schema ``RepoResponse``)."""

    id: int
    name: str
    full_name: str
    description: str | None
    github_id: str
    organization_id: int
    visibility: str | None
    archived: bool | None
    setup_status: str
    language: str | None


@attrs.frozen
class CheckSuiteSettings(_Model):
    """A repository's check-suite settings (schema ``CheckSuiteSettingsResponse``)."""

    check_retry_count: int
    ignored_checks: list[str]
    check_retry_counts: dict[str, int]
    custom_prompts: dict[str, str]
    high_priority_apps: list[str]
    available_check_suite_names: list[str]


@attrs.frozen
class CheckSuiteSettingsUpdate:
    """A partial update of check-suite settings (schema ``CheckSuiteSettingsRequest``).

    Fields left ``None`` are not sent, so they keep their current value.
    """

    check_retry_count: int | None = None
    ignored_checks: list[str] | None = None
    check_retry_counts: dict[str, int] | None = None
    custom_prompts: dict[str, str] | None = None
    high_priority_apps: list[str] | None = None


@attrs.frozen
class EditPullRequestResult(_Model):
    """The result of changing a pull request's state (schema ``EditPRResponse``)."""

    success: bool
    url: str | None = None
    number: int | None = None
    title: str | None = None
    state: str | None = None
    error: str | None = None


@attrs.frozen
class IntegrationStatus(_Model):
    """The state of one integration of an organization (schema ``IntegrationStatus``)."""

    integration_type: str
    active: bool
    token_id: int | None = None
    installation_id: int | None = None
    metadata: dict[str, Any] | None = None


@attrs.frozen
class OrganizationIntegrations(_Model):
    """Every integration of an organization (schema ``OrganizationIntegrationsResponse``)."""

    organization_id: int
    organization_name: str
    integrations: list[IntegrationStatus]
    total_active_integrations: int


@attrs.frozen
class OAuthProvider(_Model):
    """An OAuth/MCP provider (schema ``OAuthProviderResponse``)."""

    id: int
    name: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    default_scopes: list[str] | None
    is_mcp: bool
    meta: dict[str, Any] | None = None


@attrs.frozen
class CliRules(_Model):
    """Organization rules and the user's custom prompt for CLI agents (``CLIRulesResponse``)."""

    organization_rules: str | None
    user_custom_prompt: str | None
