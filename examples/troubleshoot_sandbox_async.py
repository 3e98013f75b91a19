"""Automated troubleshooting of several sandboxes at once, with the asyncio client.

The async twin of troubleshoot_sandbox.py ("Sandbox API / Advanced Pattern - Automated
Troubleshooting" in advanced-api-endpoints.md). Each sandbox is analysed concurrently; a
sandbox with no logs (400) or that does not exist (404) is reported, not fatal. The client
keeps the analysis quota (5 a minute) by itself.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/troubleshoot_sandbox_async.py [ID ...]
"""

import asyncio
import sys
from typing import Any

from codegen_async import AsyncAgent, BadRequestError, NotFoundError

ISSUE_KEYS = ("error", "root cause", "solution")


def parse_sandbox_issues(analysis_result: str | None) -> list[str]:
    """The analysis' lines that name an error, its cause or its solution."""
    return [
        line.strip()
        for line in (analysis_result or "").splitlines()
        if any(key in line.lower() for key in ISSUE_KEYS)
    ]


async def troubleshoot_sandbox(agent: AsyncAgent, sandbox_id: int) -> dict[str, Any]:
    """Analyse one sandbox's logs and start a run that fixes what the analysis found."""
    try:
        status = await agent.analyze_sandbox_logs_and_wait(sandbox_id, timeout=600)
    except (BadRequestError, NotFoundError) as exc:
        return {"sandbox_id": sandbox_id, "success": False, "error": exc.message}
    if status.status != "completed":
        return {"sandbox_id": sandbox_id, "success": False, "error": "Analysis failed"}

    issues = parse_sandbox_issues(status.result)
    if not issues:
        return {"sandbox_id": sandbox_id, "success": True, "message": "No issues found"}

    fix_run = await agent.run(
        prompt="Fix the following sandbox setup issues:\n\n"
        + "\n".join(f"- {issue}" for issue in issues)
        + "\n\nFor each issue: identify the root cause, implement the fix, verify it works, "
        "and update the setup commands if needed.",
        metadata={"sandbox_id": sandbox_id, "analysis_run_id": status.id},
    )
    return {"sandbox_id": sandbox_id, "success": True, "fix_run_id": fix_run.id}


async def main(sandbox_ids: list[int]) -> None:
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        outcomes = await asyncio.gather(*(troubleshoot_sandbox(agent, i) for i in sandbox_ids))
    for outcome in outcomes:
        print(f"Sandbox {outcome.pop('sandbox_id')}: {outcome}")


if __name__ == "__main__":
    ids = [int(arg) for arg in sys.argv[1:]] or [1, 2, 3]
    asyncio.run(main(ids))
