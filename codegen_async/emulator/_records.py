"""The emulator's records and constants: the leaf every other emulator module builds on.

Plain data (organizations, users, repositories, sandboxes, pull requests, runs), the words a
status is spelled with, and the clock helpers. It imports nothing of the emulator, so
``_state`` (the rules) and ``_content`` (the words agents write) can both use it without
importing each other.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Final, Literal

import attrs

from ..models import IntegrationStatus, OrganizationSettings, Repository

__all__ = [
    "CANONICAL_STATUSES",
    "SLACK_TOKEN_MINUTES",
    "STATUS_WORDS",
    "TERMINAL",
    "WEB_URL",
    "EmulatorConfig",
    "OrgRecord",
    "PullRequestRecord",
    "RepoRecord",
    "RunKind",
    "RunRecord",
    "SandboxRecord",
    "SetupFailure",
    "StatusStyle",
    "UserRecord",
    "iso",
]

RunKind = Literal["run", "analysis", "setup"]
StatusStyle = Literal["api", "docs"]

TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
CANONICAL_STATUSES: Final = ("running", "paused", "completed", "failed", "cancelled")

# How each status is spelled on the wire: the service's words, or the documentation's.
STATUS_WORDS: Final[dict[str, dict[str, str]]] = {
    "api": {
        "running": "ACTIVE",
        "paused": "PAUSED",
        "completed": "COMPLETE",
        "failed": "ERROR",
        "cancelled": "CANCELLED",
    },
    "docs": {
        "running": "running",
        "paused": "paused",
        "completed": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
    },
}

SLACK_TOKEN_MINUTES: Final = 10
WEB_URL: Final = "https://codegen.com/agent/trace/{}"


def iso(ts: float) -> str:
    """A unix time as the API's ISO 8601 timestamp (UTC, microseconds)."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


@attrs.frozen
class EmulatorConfig:
    """The knobs of one emulator (see :class:`~codegen_async.emulator.Emulator`)."""

    time_scale: float = 1.0
    status_style: StatusStyle = "api"
    run_duration: tuple[float, float] = (5.0, 30.0)
    failure_rate: float = 0.0
    max_runs: int | None = None


@attrs.define(slots=True)
class OrgRecord:
    id: int
    name: str
    settings: OrganizationSettings
    members: dict[int, str]  # user id -> role
    rules: str | None
    integrations: list[IntegrationStatus]


@attrs.define(slots=True)
class UserRecord:
    id: int
    github_user_id: str
    github_username: str
    email: str | None
    avatar_url: str | None
    full_name: str | None
    custom_prompt: str | None = None


@attrs.define(slots=True)
class RepoRecord:
    id: int
    org_id: int
    name: str
    full_name: str
    description: str | None
    github_id: str
    visibility: str | None
    archived: bool | None
    setup_status: str
    language: str | None
    sandbox_id: int | None = None
    next_pr_number: int = 1

    def model(self) -> Repository:
        return Repository(
            id=self.id,
            name=self.name,
            full_name=self.full_name,
            description=self.description,
            github_id=self.github_id,
            organization_id=self.org_id,
            visibility=self.visibility,
            archived=self.archived,
            setup_status=self.setup_status,
            language=self.language,
        )


@attrs.frozen
class SetupFailure:
    """What went wrong in a sandbox's setup: the failing command, its error, and the cure."""

    command: str
    error: str
    detail: tuple[str, ...]
    cause: str
    fix: str
    fix_commands: tuple[str, ...]
    exit_code: int = 1


@attrs.define(slots=True)
class SandboxRecord:
    id: int
    org_id: int
    repo_id: int | None
    logs: str | None
    failure: SetupFailure | None


@attrs.define(slots=True)
class PullRequestRecord:
    id: int
    org_id: int
    repo_id: int
    number: int
    title: str
    state: str  # open, closed, draft
    head_branch_name: str
    created_at: str
    run_id: int | None = None


class RunRecord:
    """One agent run; its status is derived from the clock when read."""

    __slots__ = (
        "agent_type",
        "banned",
        "created_at",
        "created_iso",
        "deadline",
        "forced",
        "forced_at",
        "forced_result",
        "id",
        "kind",
        "metadata",
        "model",
        "operation",
        "org_id",
        "planned",
        "pr_id",
        "prompt",
        "removed_from_pr",
        "repo_id",
        "sandbox_id",
        "segments",
        "source_type",
        "user_id",
    )

    def __init__(
        self,
        *,
        id: int,
        org_id: int,
        user_id: int,
        kind: RunKind,
        operation: str,
        source_type: str,
        prompt: str,
        created_at: float,
        duration: float,
        planned: str,
        repo_id: int | None = None,
        sandbox_id: int | None = None,
        metadata: dict[str, Any] | None = None,
        model: str | None = None,
        agent_type: str | None = None,
    ) -> None:
        self.id = id
        self.org_id = org_id
        self.user_id = user_id
        self.kind: RunKind = kind
        self.operation = operation
        self.source_type = source_type
        self.prompt = prompt
        self.created_at = created_at
        self.created_iso = iso(created_at)
        self.deadline = created_at + duration
        self.planned = planned
        self.repo_id = repo_id
        self.sandbox_id = sandbox_id
        self.metadata = metadata
        self.model = model
        self.agent_type = agent_type
        self.forced: str | None = None
        self.forced_at: float | None = None
        self.forced_result: str | None = None
        self.pr_id: int | None = None
        self.banned = False
        self.removed_from_pr = False
        # (start, deadline, prompt) of every stretch of work: the first, then each resume.
        self.segments: list[tuple[float, float, str]] = [(created_at, self.deadline, prompt)]

    def status(self, now: float) -> str:
        """The canonical status (``running``, ``completed``, ...) at unix time ``now``."""
        forced = self.forced
        if forced is not None:
            return forced
        return self.planned if now >= self.deadline else "running"

    def finished_at(self, now: float) -> float | None:
        """When the run became terminal, or ``None`` while it is not."""
        forced = self.forced
        if forced is not None:
            return self.forced_at if forced in TERMINAL else None
        return self.deadline if now >= self.deadline else None

    def force(self, status: str, now: float, result: str | None = None) -> None:
        self.forced = status
        self.forced_at = now
        self.forced_result = result

    def restart(self, now: float, duration: float, planned: str, prompt: str) -> None:
        self.forced = None
        self.forced_at = None
        self.forced_result = None
        self.planned = planned
        self.deadline = now + duration
        self.segments.append((now, self.deadline, prompt))
