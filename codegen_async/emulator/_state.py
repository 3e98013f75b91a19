"""The emulator's in-memory world and the rules that change it.

The records themselves (and the status words) live in the leaf module ``_records``; this
module holds the indexes over them and every rule that reads or changes them. Agent runs need
no timers (see ``RunRecord``), so 10,000 concurrent runs cost nothing.
"""

from __future__ import annotations

import random
import time
from typing import Any

from ..models import (
    AgentRun,
    CheckSuiteSettings,
    GithubPullRequest,
    OAuthProvider,
    Organization,
    RunStatus,
    SourceType,
    User,
    UserRole,
)
from . import _content
from ._errors import NO_ACCESS, RUN_NOT_FOUND, ApiError
from ._records import (
    CANONICAL_STATUSES,
    SLACK_TOKEN_MINUTES,
    STATUS_WORDS,
    TERMINAL,
    WEB_URL,
    EmulatorConfig,
    OrgRecord,
    PullRequestRecord,
    RepoRecord,
    RunKind,
    RunRecord,
    SandboxRecord,
    UserRecord,
    iso,
)

__all__ = ["EmulatorState"]


class EmulatorState:
    """Everything the emulated service knows, and the rules that change it."""

    def __init__(self, config: EmulatorConfig, *, seed: int = 0) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.wire_status: dict[str, RunStatus] = {
            canonical: RunStatus(word)
            for canonical, word in STATUS_WORDS[config.status_style].items()
        }
        self.orgs: dict[int, OrgRecord] = {}
        self.users: dict[int, UserRecord] = {}
        self.tokens: dict[str, int] = {}
        self.repos: dict[int, RepoRecord] = {}
        self.sandboxes: dict[int, SandboxRecord] = {}
        self.pull_requests: dict[int, PullRequestRecord] = {}
        self.check_suites: dict[int, CheckSuiteSettings] = {}
        self.mcp_providers: list[OAuthProvider] = []
        self.oauth_tokens: dict[tuple[int, int], dict[str, dict[str, Any]]] = {}
        self.slack_tokens: dict[str, dict[str, Any]] = {}
        self.runs: dict[int, RunRecord] = {}
        self.org_runs: dict[int, list[RunRecord]] = {}
        self.runs_created = 0  # by the API, for the plan limit (seeded history excluded)
        self.next_run_id = 1
        self.next_pr_id = 1
        # Set by the seed: who the default token belongs to, and the organizations around it.
        self.primary_user_id = 0
        self.primary_org_id = 0
        self.secondary_org_id = 0
        self.foreign_org_id = 0
        self.foreign_token = ""  # a token of a user of the foreign organization
        self._user_models: dict[tuple[int, int | None], User] = {}

    # --- users and organizations ---------------------------------------------------------
    def require_member(self, org_id: int, user_id: int) -> OrgRecord:
        """The organization, or 403 when the user is not a member (or it does not exist)."""
        org = self.orgs.get(org_id)
        if org is None or user_id not in org.members:
            raise ApiError(403, NO_ACCESS)
        return org

    def user_model(self, user_id: int, org_id: int | None) -> User:
        """A user as ``UserResponse``, with the role they hold in ``org_id``."""
        key = (user_id, org_id)
        cached = self._user_models.get(key)
        if cached is not None:
            return cached
        record = self.users[user_id]
        role: str | None
        if org_id is None:
            role = self.orgs[self.home_org(user_id)].members.get(user_id)
        else:
            role = self.orgs[org_id].members.get(user_id)
        model = User(
            id=record.id,
            github_user_id=record.github_user_id,
            github_username=record.github_username,
            email=record.email,
            avatar_url=record.avatar_url,
            full_name=record.full_name,
            role=None if role is None else UserRole(role),
            is_admin=None if role is None else role == "ADMIN",
        )
        self._user_models[key] = model
        return model

    def home_org(self, user_id: int) -> int:
        """The first organization the user belongs to (``/users/me`` reports that role)."""
        for org in self.orgs.values():
            if user_id in org.members:
                return org.id
        raise KeyError(user_id)

    def org_model(self, org: OrgRecord) -> Organization:
        return Organization(id=org.id, name=org.name, settings=org.settings)

    def orgs_of(self, user_id: int) -> list[OrgRecord]:
        return [org for org in self.orgs.values() if user_id in org.members]

    def add_token(self, user_id: int, token: str | None = None) -> str:
        """Give ``user_id`` another API token (a new random one unless ``token`` is given)."""
        if user_id not in self.users:
            raise KeyError(f"no user {user_id}")
        if token is None:
            token = f"cg-emu-{self.rng.getrandbits(128):032x}"
        self.tokens[token] = user_id
        return token

    # --- repositories and sandboxes ------------------------------------------------------
    def repos_of(self, org_id: int) -> list[RepoRecord]:
        return [repo for repo in self.repos.values() if repo.org_id == org_id]

    def sandbox_for_repo(self, repo: RepoRecord) -> int | None:
        """A sandbox with setup logs for runs in ``repo``: its own, else the org's first."""
        own = self.sandboxes.get(repo.sandbox_id) if repo.sandbox_id is not None else None
        if own is not None and own.logs:
            return own.id
        for box in self.sandboxes.values():
            if box.org_id == repo.org_id and box.logs:
                return box.id
        return None

    # --- agent runs ----------------------------------------------------------------------
    def plan(self) -> tuple[float, str]:
        """A random duration (scaled) and final status for a new stretch of work."""
        low, high = self.config.run_duration
        duration = self.rng.uniform(low, high) * self.config.time_scale
        planned = "failed" if self.rng.random() < self.config.failure_rate else "completed"
        return duration, planned

    def create_run(
        self,
        *,
        org_id: int,
        user_id: int,
        kind: RunKind,
        operation: str,
        source_type: str,
        prompt: str,
        now: float,
        repo_id: int | None = None,
        sandbox_id: int | None = None,
        metadata: dict[str, Any] | None = None,
        model: str | None = None,
        agent_type: str | None = None,
    ) -> RunRecord:
        duration, planned = self.plan()
        run = RunRecord(
            id=self.next_run_id,
            org_id=org_id,
            user_id=user_id,
            kind=kind,
            operation=operation,
            source_type=source_type,
            prompt=prompt,
            created_at=now,
            duration=duration,
            planned=planned,
            repo_id=repo_id,
            sandbox_id=sandbox_id,
            metadata=metadata,
            model=model,
            agent_type=agent_type,
        )
        self.next_run_id += 1
        self.runs_created += 1
        if kind == "run" and repo_id is not None:
            run.pr_id = self._open_pull_request(run, now)
        self.runs[run.id] = run
        self.org_runs.setdefault(org_id, []).append(run)
        return run

    def get_run(self, org_id: int, run_id: int) -> RunRecord:
        """A run of the organization, or 404 ``Agent run not found.``."""
        run = self.runs.get(run_id)
        if run is None or run.org_id != org_id:
            raise ApiError(404, RUN_NOT_FOUND)
        return run

    def find_run(self, run_id: int) -> RunRecord:
        """A run by id alone (admin use); ``KeyError`` if unknown."""
        try:
            return self.runs[run_id]
        except KeyError:
            raise KeyError(f"no agent run {run_id}") from None

    def run_result(self, run: RunRecord, status: str) -> str | None:
        if status in ("running", "paused"):
            return run.forced_result if status == "paused" else None
        if run.forced_result is not None:
            return run.forced_result
        if status == "cancelled":
            return "The agent run was cancelled before it finished."
        return _content.run_result(self, run, status)

    def run_summary(self, run: RunRecord, status: str) -> str | None:
        if status == "running":
            return None
        return _content.run_summary(self, run, status)

    def run_model(self, run: RunRecord, now: float) -> AgentRun:
        """The run as ``AgentRunResponse`` at unix time ``now``."""
        status = run.status(now)
        prs = None
        if run.pr_id is not None and status == "completed":
            prs = [self.pull_request_model(self.pull_requests[run.pr_id])]
        return AgentRun(
            id=run.id,
            organization_id=run.org_id,
            status=self.wire_status[status],
            created_at=run.created_iso,
            web_url=WEB_URL.format(run.id),
            result=self.run_result(run, status),
            summary=self.run_summary(run, status),
            source_type=SourceType(run.source_type),
            github_pull_requests=prs,
            metadata=run.metadata,
        )

    def finish_run(
        self, run_id: int, status: str = "completed", result: str | None = None
    ) -> RunRecord:
        """End (or pause) a run now, whatever its plan said."""
        canonical = str.__str__(RunStatus(status))
        if canonical not in ("completed", "failed", "cancelled", "paused"):
            raise ValueError(
                f"status must be completed, failed, cancelled or paused (any spelling), "
                f"got {status!r}"
            )
        run = self.find_run(run_id)
        run.force(canonical, time.time(), result)
        return run

    def runs_page(
        self,
        org_id: int,
        *,
        user_id: int | None,
        source_type: str | None,
        skip: int,
        limit: int,
    ) -> tuple[list[RunRecord], int]:
        """One page of an organization's runs, newest first, and the filtered total."""
        runs = self.org_runs.get(org_id, [])
        if user_id is None and source_type is None:
            total = len(runs)
            end = total - skip
            if end <= 0:
                return [], total
            start = max(end - limit, 0)
            return runs[start:end][::-1], total
        matching = [
            run
            for run in reversed(runs)
            if (user_id is None or run.user_id == user_id)
            and (source_type is None or run.source_type == source_type)
        ]
        return matching[skip : skip + limit], len(matching)

    # --- pull requests -------------------------------------------------------------------
    def add_pull_request(
        self,
        repo: RepoRecord,
        *,
        title: str,
        state: str,
        branch: str,
        created_at: float,
        run_id: int | None = None,
    ) -> PullRequestRecord:
        pr = PullRequestRecord(
            id=self.next_pr_id,
            org_id=repo.org_id,
            repo_id=repo.id,
            number=repo.next_pr_number,
            title=title,
            state=state,
            head_branch_name=branch,
            created_at=iso(created_at),
            run_id=run_id,
        )
        self.next_pr_id += 1
        repo.next_pr_number += 1
        self.pull_requests[pr.id] = pr
        return pr

    def _open_pull_request(self, run: RunRecord, now: float) -> int | None:
        repo = self.repos.get(run.repo_id) if run.repo_id is not None else None
        if repo is None:
            return None
        pr = self.add_pull_request(
            repo,
            title=_content.pr_title(run.prompt),
            state="open",
            branch=f"codegen-bot/run-{run.id}",
            # The pull request appears when the run finishes; until then it is hidden.
            created_at=run.deadline,
            run_id=run.id,
        )
        return pr.id

    def pull_request_visible(self, pr: PullRequestRecord, now: float) -> bool:
        """A run's pull request exists once the run has completed."""
        if pr.run_id is None:
            return True
        run = self.runs.get(pr.run_id)
        return run is not None and run.status(now) == "completed"

    def pull_request_url(self, pr: PullRequestRecord) -> str:
        return f"https://github.com/{self.repos[pr.repo_id].full_name}/pull/{pr.number}"

    def pull_request_model(self, pr: PullRequestRecord) -> GithubPullRequest:
        created_at = pr.created_at
        run = self.runs.get(pr.run_id) if pr.run_id is not None else None
        if run is not None:
            # A run opens its pull request when it finishes.
            created_at = iso(run.finished_at(time.time()) or run.deadline)
        return GithubPullRequest(
            id=pr.id,
            created_at=created_at,
            title=pr.title,
            url=self.pull_request_url(pr),
            head_branch_name=pr.head_branch_name,
        )

    # --- Slack ---------------------------------------------------------------------------
    def issue_slack_token(self, user_id: int, org_id: int, now: float) -> str:
        token = f"{self.rng.getrandbits(96):024x}"
        ttl = SLACK_TOKEN_MINUTES * 60.0 * self.config.time_scale
        self.slack_tokens[token] = {
            "user_id": user_id,
            "org_id": org_id,
            "issued_at": now,
            "expires_at": now + ttl,
            "used_at": None,
        }
        return token

    def connect_slack(self, token: str, now: float) -> dict[str, Any]:
        """Play the Slack bot receiving ``Connect my account: {token}``."""
        record = self.slack_tokens.get(token)
        if record is None:
            return {"connected": False, "reason": "unknown token"}
        if record["used_at"] is not None:
            return {"connected": False, "reason": "token already used"}
        if now >= record["expires_at"]:
            return {"connected": False, "reason": "token expired"}
        record["used_at"] = now
        return {"connected": True, "user_id": record["user_id"], "org_id": record["org_id"]}

    # --- admin views ---------------------------------------------------------------------
    def run_info(self, run: RunRecord, now: float) -> dict[str, Any]:
        """The internal state of a run (``GET /_emulator/runs/{id}``)."""
        status = run.status(now)
        return {
            "id": run.id,
            "organization_id": run.org_id,
            "user_id": run.user_id,
            "kind": run.kind,
            "operation": run.operation,
            "source_type": run.source_type,
            "status": status,
            "wire_status": self.wire_status[status].raw,
            "terminal": status in TERMINAL,
            "created_at": run.created_at,
            "deadline": run.deadline,
            "finished_at": run.finished_at(now),
            "planned_status": run.planned,
            "forced_status": run.forced,
            "repo_id": run.repo_id,
            "sandbox_id": run.sandbox_id,
            "pull_request_id": run.pr_id,
            "metadata": run.metadata,
            "prompt": run.prompt,
            "model": run.model,
            "agent_type": run.agent_type,
            "resumes": len(run.segments) - 1,
            "banned": run.banned,
            "removed_from_pr": run.removed_from_pr,
        }

    def run_counts(self, now: float) -> dict[str, int]:
        counts = dict.fromkeys(CANONICAL_STATUSES, 0)
        for run in self.runs.values():
            counts[run.status(now)] += 1
        return counts
