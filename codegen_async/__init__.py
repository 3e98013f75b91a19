"""codegen_async: the asyncio SDK of the Codegen Platform API.

>>> async with AsyncAgent() as agent:          # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
...     run = await agent.run("Fix the flaky test in tests/test_api.py")
...     run = await agent.wait_for_run(run.id)
"""

from __future__ import annotations

from ._client import AsyncAgent
from ._config import Timeout
from ._endpoints import ENDPOINTS, Endpoint, Quota
from ._network import InsecureTLSWarning
from ._notgiven import NOT_GIVEN, NotGiven
from ._ratelimit import RateLimits
from ._raw import AsyncRawResponses, RawResponse
from ._transport import TransportStats
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    CodegenError,
    ConfigurationError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RunWaitError,
    RunWaitTimeoutError,
    UnprocessableEntityError,
    ValidationErrorDetail,
    WaitTimeoutError,
)
from .models import (
    AgentRun,
    AgentRunLog,
    AgentRunWithLogs,
    AnalyzeLogsResponse,
    CheckSuiteSettings,
    CheckSuiteSettingsUpdate,
    CliRules,
    EditPullRequestResult,
    FinishedRun,
    GithubPullRequest,
    IntegrationStatus,
    OAuthProvider,
    Organization,
    OrganizationIntegrations,
    OrganizationSettings,
    Page,
    Repository,
    RunStatus,
    SetupCommandsResponse,
    SlackConnectToken,
    SourceType,
    User,
    UserRole,
)

__all__ = [
    "ENDPOINTS",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AgentRun",
    "AgentRunLog",
    "AgentRunWithLogs",
    "AnalyzeLogsResponse",
    "AsyncAgent",
    "AsyncRawResponses",
    "AuthenticationError",
    "BadRequestError",
    "CheckSuiteSettings",
    "CheckSuiteSettingsUpdate",
    "CliRules",
    "ClientClosedError",
    "CodegenError",
    "ConfigurationError",
    "EditPullRequestResult",
    "Endpoint",
    "FinishedRun",
    "GithubPullRequest",
    "InsecureTLSWarning",
    "IntegrationStatus",
    "InternalServerError",
    "NotFoundError",
    "NotGiven",
    "OAuthProvider",
    "Organization",
    "OrganizationIntegrations",
    "OrganizationSettings",
    "Page",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "Quota",
    "RateLimitError",
    "RateLimits",
    "RawResponse",
    "Repository",
    "RunStatus",
    "RunWaitError",
    "RunWaitTimeoutError",
    "SetupCommandsResponse",
    "SlackConnectToken",
    "SourceType",
    "Timeout",
    "TransportStats",
    "UnprocessableEntityError",
    "User",
    "UserRole",
    "ValidationErrorDetail",
    "WaitTimeoutError",
    "__version__",
]
