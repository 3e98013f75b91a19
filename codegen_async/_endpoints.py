"""The one table of the Codegen API's operations.

Each operation is declared here once, as data: HTTP method, path template, parameters with
their ranges, request body model, response type, documented quota, and whether it is safe
to retry. The client (request building, validation, retries), the rate limiter (quotas),
the sync wrapper (derived from the client) and the emulator (routes, request validation,
server-side quotas) all read this table; adding an operation starts and mostly ends here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .models import (
    AgentRun,
    AgentRunWithLogs,
    AnalyzeLogsResponse,
    CheckSuiteSettings,
    CheckSuiteSettingsUpdate,
    CliRules,
    EditPullRequestResult,
    OAuthProvider,
    Organization,
    OrganizationIntegrations,
    Page,
    Repository,
    SetupCommandsResponse,
    SlackConnectToken,
    User,
)

__all__ = ["ENDPOINTS", "STANDARD", "Endpoint", "Param", "Quota", "RequestBody", "path_regex"]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


@attrs.frozen
class Quota:
    """A documented rate limit: at most ``limit`` requests in any ``window`` seconds."""

    limit: int
    window: float

    def scaled(self, scale: float) -> Quota:
        """The same quota with its window multiplied by ``scale``."""
        return Quota(self.limit, self.window * scale)

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"


# The documented quotas. STANDARD is also the one for operations that document none.
STANDARD = Quota(60, 30.0)
CREATE_RUN = Quota(10, 60.0)
AGENT_HEAVY = Quota(5, 60.0)  # log analysis and setup-command generation
WRITE_30 = Quota(30, 60.0)  # pull-request edits and CLI rules
RUN_LOGS = Quota(60, 60.0)


@attrs.frozen
class Param:
    """A path or query parameter with the constraints the API enforces on it."""

    name: str
    location: Literal["path", "query"]
    type: type[int] | type[str] | type[bool] = int
    required: bool = True
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    nullable: bool = False
    enum: tuple[str, ...] | None = None


@attrs.frozen
class RequestBody:
    """A JSON request body: the fields it must and may contain, with their JSON types.

    ``fields`` maps each field name to the JSON types it may hold (``"integer"``,
    ``"string"``, ``"boolean"``, ``"array"``, ``"object"``, ``"null"``); ``required`` names
    those that must be present; ``enums`` restricts string fields; ``ranges`` bounds integers;
    ``items`` gives the JSON type of the elements of an array field, or of the values of an
    object field that is a map (``"string"``, ``"integer"``).
    """

    schema: str
    fields: Mapping[str, tuple[str, ...]]
    required: tuple[str, ...] = ()
    enums: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    ranges: Mapping[str, tuple[int, int]] = attrs.field(factory=dict)
    model: type | None = None
    items: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Endpoint:
    """One operation of the API."""

    name: str
    method: HttpMethod
    path: str
    response: Any
    quota: Quota = STANDARD
    idempotent: bool = True
    params: tuple[Param, ...] = ()
    body: RequestBody | None = None
    paginated: bool = False
    creates_run: bool = False
    operation_id: str = ""
    summary: str = ""

    @property
    def path_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.location == "path")

    @property
    def query_params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.location == "query")

    @property
    def route(self) -> str:
        """``METHOD /path/{template}``: the key for quotas and statistics."""
        return f"{self.method} {self.path}"


def path_regex(template: str) -> str:
    """A path template as a regular expression (its source, unanchored): each ``{name}``
    stands for one path segment, everything else for itself. Read by the emulator's 405s,
    ``request()``'s route lookup and the CLI's error hints."""
    parts = re.split(r"(\{[^/{}]+\})", template)
    return "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)


ORG = Param("org_id", "path")
RUN_ID = Param("agent_run_id", "path")
SKIP = Param("skip", "query", required=False, default=0, minimum=0)
LIMIT = Param("limit", "query", required=False, default=100, minimum=1, maximum=100)
REPO_ID_QUERY = Param("repo_id", "query")
SOURCE_TYPES = (
    "LOCAL",
    "SLACK",
    "GITHUB",
    "GITHUB_CHECK_SUITE",
    "GITHUB_PR_REVIEW",
    "LINEAR",
    "API",
    "CHAT",
    "JIRA",
    "CLICKUP",
    "MONDAY",
    "SETUP_COMMANDS",
)

_IMAGES = ("array", "null")
_STOP_BODY = RequestBody(
    "StopAgentRunInput",
    {
        "agent_run_id": ("integer",),
        "before_card_order_id": ("string", "null"),
        "after_card_order_id": ("string", "null"),
    },
    required=("agent_run_id",),
)
_EDIT_PR_BODY = RequestBody(
    "EditPRInput",
    {"state": ("string",)},
    required=("state",),
    enums={"state": ("open", "closed", "draft", "ready_for_review")},
)

_TABLE: tuple[Endpoint, ...] = (
    # --- users -------------------------------------------------------------------------
    Endpoint(
        "get_users",
        "GET",
        "/v1/organizations/{org_id}/users",
        Page[User],
        params=(ORG, SKIP, LIMIT),
        paginated=True,
        operation_id="get_users_v1_organizations__org_id__users_get",
        summary="List the users of an organization.",
    ),
    Endpoint(
        "get_user",
        "GET",
        "/v1/organizations/{org_id}/users/{user_id}",
        User,
        params=(ORG, Param("user_id", "path")),
        operation_id="get_user_v1_organizations__org_id__users__user_id__get",
        summary="Get one user of an organization.",
    ),
    Endpoint(
        "get_current_user",
        "GET",
        "/v1/users/me",
        User,
        operation_id="get_current_user_info_v1_users_me_get",
        summary="Get the user the API token belongs to.",
    ),
    # --- agent runs ----------------------------------------------------------------------
    Endpoint(
        "run",
        "POST",
        "/v1/organizations/{org_id}/agent/run",
        AgentRun,
        quota=CREATE_RUN,
        idempotent=False,
        creates_run=True,
        params=(ORG,),
        body=RequestBody(
            "CreateAgentRunInput",
            {
                "prompt": ("string",),
                "images": _IMAGES,
                "metadata": ("object", "null"),
                "repo_id": ("integer", "null"),
                "model": ("string", "null"),
                "agent_type": ("string", "null"),
            },
            required=("prompt",),
            enums={"agent_type": ("codegen", "claude_code")},
            items={"images": "string"},
        ),
        operation_id="create_agent_run_v1_organizations__org_id__agent_run_post",
        summary="Start an agent run.",
    ),
    Endpoint(
        "get_run",
        "GET",
        "/v1/organizations/{org_id}/agent/run/{agent_run_id}",
        AgentRun,
        params=(ORG, RUN_ID),
        operation_id="get_agent_run_v1_organizations__org_id__agent_run__agent_run_id__get",
        summary="Get an agent run's status and result.",
    ),
    Endpoint(
        "list_runs",
        "GET",
        "/v1/organizations/{org_id}/agent/runs",
        Page[AgentRun],
        params=(
            ORG,
            Param("user_id", "query", required=False, nullable=True),
            Param("source_type", "query", str, required=False, nullable=True, enum=SOURCE_TYPES),
            SKIP,
            LIMIT,
        ),
        paginated=True,
        operation_id="list_agent_runs_v1_organizations__org_id__agent_runs_get",
        summary="List an organization's agent runs, newest first.",
    ),
    Endpoint(
        "resume_run",
        "POST",
        "/v1/organizations/{org_id}/agent/run/resume",
        AgentRun,
        idempotent=False,
        params=(ORG,),
        body=RequestBody(
            "ResumeAgentRunInput",
            {"agent_run_id": ("integer",), "prompt": ("string",), "images": _IMAGES},
            required=("agent_run_id", "prompt"),
            items={"images": "string"},
        ),
        operation_id="resume_agent_run_v1_organizations__org_id__agent_run_resume_post",
        summary="Resume a paused agent run with a new prompt.",
    ),
    Endpoint(
        "ban_all_checks",
        "POST",
        "/v1/organizations/{org_id}/agent/run/ban",
        Any,
        params=(ORG,),
        body=_STOP_BODY,
        operation_id="ban_all_checks_for_agent_run_v1_organizations__org_id__agent_run_ban_post",
        summary="Ban all checks for an agent run's pull request and stop its agents.",
    ),
    Endpoint(
        "unban_all_checks",
        "POST",
        "/v1/organizations/{org_id}/agent/run/unban",
        Any,
        params=(ORG,),
        body=_STOP_BODY,
        operation_id=(
            "unban_all_checks_for_agent_run_v1_organizations__org_id__agent_run_unban_post"
        ),
        summary="Lift a ban on an agent run's pull request checks.",
    ),
    Endpoint(
        "remove_from_pr",
        "POST",
        "/v1/organizations/{org_id}/agent/run/remove-from-pr",
        Any,
        params=(ORG,),
        body=_STOP_BODY,
        operation_id="remove_codegen_from_pr_v1_organizations__org_id__agent_run_remove_from_pr_post",
        summary="Remove Codegen from an agent run's pull request.",
    ),
    Endpoint(
        "get_run_logs",
        "GET",
        "/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs",
        AgentRunWithLogs,
        quota=RUN_LOGS,
        params=(
            ORG,
            RUN_ID,
            SKIP,
            LIMIT,
            Param("reverse", "query", bool, required=False, default=False),
        ),
        operation_id=(
            "get_agent_run_logs_v1_alpha_organizations__org_id__agent_run__agent_run_id__logs_get"
        ),
        summary="Get an agent run with one page of its logs (alpha).",
    ),
    # --- sandbox and setup commands ---------------------------------------------------
    Endpoint(
        "analyze_sandbox_logs",
        "POST",
        "/v1/organizations/{org_id}/sandbox/{sandbox_id}/analyze-logs",
        AnalyzeLogsResponse,
        quota=AGENT_HEAVY,
        idempotent=False,
        creates_run=True,
        params=(ORG, Param("sandbox_id", "path")),
        operation_id=(
            "analyze_sandbox_logs_v1_organizations__org_id__sandbox__sandbox_id__analyze_logs_post"
        ),
        summary="Start an agent that analyses a sandbox's setup logs.",
    ),
    Endpoint(
        "generate_setup_commands",
        "POST",
        "/v1/organizations/{org_id}/setup-commands/generate",
        SetupCommandsResponse,
        quota=AGENT_HEAVY,
        idempotent=False,
        creates_run=True,
        params=(ORG,),
        body=RequestBody(
            "GenerateSetupCommandsInput",
            {
                "repo_id": ("integer",),
                "prompt": ("string", "null"),
                "trigger_source": ("string",),
            },
            required=("repo_id",),
        ),
        operation_id=(
            "generate_setup_commands_v1_organizations__org_id__setup_commands_generate_post"
        ),
        summary="Start an agent that writes setup commands for a repository.",
    ),
    # --- Slack ---------------------------------------------------------------------------
    Endpoint(
        "generate_slack_connect_token",
        "POST",
        "/v1/slack-connect/generate-token",
        SlackConnectToken,
        idempotent=False,
        body=RequestBody("GenerateTokenRequest", {"org_id": ("integer",)}, required=("org_id",)),
        operation_id="generate_slack_connect_token_endpoint_v1_slack_connect_generate_token_post",
        summary="Generate a single-use token that links a Slack account (10 minutes).",
    ),
    # --- organizations, repositories, integrations -----------------------------------
    Endpoint(
        "get_organizations",
        "GET",
        "/v1/organizations",
        Page[Organization],
        params=(SKIP, LIMIT),
        paginated=True,
        operation_id="get_organizations_v1_organizations_get",
        summary="List the organizations the token's user belongs to.",
    ),
    Endpoint(
        "get_repositories",
        "GET",
        "/v1/organizations/{org_id}/repos",
        Page[Repository],
        params=(ORG, SKIP, LIMIT),
        paginated=True,
        operation_id="get_repositories_v1_organizations__org_id__repos_get",
        summary="List an organization's repositories.",
    ),
    Endpoint(
        "get_integrations",
        "GET",
        "/v1/organizations/{org_id}/integrations",
        OrganizationIntegrations,
        params=(ORG,),
        operation_id=(
            "get_organization_integrations_endpoint_v1_organizations__org_id__integrations_get"
        ),
        summary="Get the status of every integration of an organization.",
    ),
    Endpoint(
        "get_check_suite_settings",
        "GET",
        "/v1/organizations/{org_id}/repos/check-suite-settings",
        CheckSuiteSettings,
        params=(ORG, REPO_ID_QUERY),
        operation_id=(
            "get_check_suite_settings_v1_organizations__org_id__repos_check_suite_settings_get"
        ),
        summary="Get a repository's check-suite settings.",
    ),
    Endpoint(
        "update_check_suite_settings",
        "PUT",
        "/v1/organizations/{org_id}/repos/check-suite-settings",
        dict[str, Any],
        params=(ORG, REPO_ID_QUERY),
        body=RequestBody(
            "CheckSuiteSettingsRequest",
            {
                "check_retry_count": ("integer", "null"),
                "ignored_checks": ("array", "null"),
                "check_retry_counts": ("object", "null"),
                "custom_prompts": ("object", "null"),
                "high_priority_apps": ("array", "null"),
            },
            ranges={"check_retry_count": (0, 10)},
            model=CheckSuiteSettingsUpdate,
            items={
                "ignored_checks": "string",
                "check_retry_counts": "integer",
                "custom_prompts": "string",
                "high_priority_apps": "string",
            },
        ),
        operation_id=(
            "update_check_suite_settings_v1_organizations__org_id__repos_check_suite_settings_put"
        ),
        summary="Update a repository's check-suite settings.",
    ),
    # --- pull requests -------------------------------------------------------------------
    Endpoint(
        "edit_pull_request",
        "PATCH",
        "/v1/organizations/{org_id}/repos/{repo_id}/prs/{pr_id}",
        EditPullRequestResult,
        quota=WRITE_30,
        params=(ORG, Param("repo_id", "path"), Param("pr_id", "path")),
        body=_EDIT_PR_BODY,
        operation_id="edit_pull_request_v1_organizations__org_id__repos__repo_id__prs__pr_id__patch",
        summary="Change a pull request's state (open, closed, draft, ready_for_review).",
    ),
    Endpoint(
        "edit_pull_request_simple",
        "PATCH",
        "/v1/organizations/{org_id}/prs/{pr_id}",
        EditPullRequestResult,
        quota=WRITE_30,
        params=(ORG, Param("pr_id", "path")),
        body=_EDIT_PR_BODY,
        operation_id="edit_pull_request_simple_v1_organizations__org_id__prs__pr_id__patch",
        summary="Change a pull request's state, by pull request id alone.",
    ),
    # --- CLI, MCP, OAuth -----------------------------------------------------------------
    Endpoint(
        "get_cli_rules",
        "GET",
        "/v1/organizations/{org_id}/cli/rules",
        CliRules,
        quota=WRITE_30,
        params=(ORG,),
        operation_id="get_cli_rules_v1_organizations__org_id__cli_rules_get",
        summary="Get organization rules and the user's custom prompt for CLI agents.",
    ),
    Endpoint(
        "get_mcp_providers",
        "GET",
        "/v1/mcp-providers",
        list[OAuthProvider],
        operation_id="get_mcp_providers_v1_mcp_providers_get",
        summary="List the MCP providers.",
    ),
    Endpoint(
        "get_oauth_token_status",
        "GET",
        "/v1/oauth/tokens/status",
        Any,
        params=(Param("org_id", "query"),),
        operation_id="get_oauth_token_status_v1_oauth_tokens_status_get",
        summary="List the providers with an active OAuth token for the user and organization.",
    ),
    Endpoint(
        "revoke_oauth_token",
        "POST",
        "/v1/oauth/tokens/revoke",
        Any,
        params=(Param("provider", "query", str), Param("org_id", "query")),
        operation_id="revoke_oauth_token_v1_oauth_tokens_revoke_post",
        summary="Revoke the user's OAuth tokens for one provider.",
    ),
)

ENDPOINTS: Mapping[str, Endpoint] = {e.name: e for e in _TABLE}
"""Every operation of the API, by client method name."""

assert len(ENDPOINTS) == len(_TABLE), "endpoint names must be unique"
