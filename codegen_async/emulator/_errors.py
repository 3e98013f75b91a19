"""The error answers the emulator sends, with the service's own words.

Every error body is ``{"message": ..., "status_code": ...}`` like the API's documented error
schemas (``PermissionsErrorResponse``, ``AgentRunNotFoundErrorResponse``, ...), except 422,
which has FastAPI's ``{"detail": [...]}`` shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ApiError", "error_body"]

# The messages are the defaults of the spec's error schemas, where it has one.
RATE_LIMITED: Final = "Rate limit exceeded. Please try again later."
PLAN_LIMIT: Final = (
    "Alloted agent runs for the current billing plan have been reached. "
    "Please upgrade your plan to continue."
)
NO_ACCESS: Final = "You do not have access to this organization."
RUN_NOT_FOUND: Final = "Agent run not found."
USER_NOT_FOUND: Final = "User not found."
NO_REPOS: Final = "No repos found in the organization. Please add some repos and try again."
NO_LOGS: Final = "No logs available for analysis"
SANDBOX_NOT_FOUND: Final = "Sandbox not found"
REPO_NOT_FOUND: Final = "Repository not found"
PR_NOT_FOUND: Final = "Pull request not found"
NOT_AUTHENTICATED: Final = "Invalid or missing API token. Send 'Authorization: Bearer <token>'."


def error_body(status: int, message: str) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"message": message, "status_code": status}


class ApiError(Exception):
    """Raised by an operation to answer with an error status instead of its result."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.body = error_body(status, message) if body is None else body
