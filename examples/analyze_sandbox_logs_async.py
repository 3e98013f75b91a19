"""Analyze Sandbox Logs with the asyncio client: start the analysis, wait, read the insights.

The async twin of analyze_sandbox_logs.py ("Sandbox API / Analyze Sandbox Logs / Example"
in advanced-api-endpoints.md): ``wait_for_run`` replaces the polling loop.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/analyze_sandbox_logs_async.py
"""

import asyncio
import os

from codegen_async import AsyncAgent

SANDBOX_ID = int(os.environ.get("CODEGEN_EXAMPLE_SANDBOX_ID", "1"))


async def main() -> None:
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        # Step 1: start the log analysis
        response = await agent.analyze_sandbox_logs(sandbox_id=SANDBOX_ID)
        print(f"Analysis started: {response.message}")
        print(f"Agent run ID: {response.agent_run_id}")

        # Step 2: wait for it (the client polls, backing off, within the quota)
        status = await agent.wait_for_run(response.agent_run_id, timeout=600)
        print(f"Status: {status.status}")

        # Step 3: check the analysis
        if status.status == "completed":
            print("\n✓ Log Analysis Complete:")
            print(f"Summary: {status.summary}")
            print(f"Result: {status.result}")
            result = (status.result or "").lower()
            if "error" in result:
                print("\n⚠️ Errors found in sandbox setup")
            if "solution" in result:
                print("✓ Suggested solutions available")
        else:
            print(f"\n❌ Analysis failed: {status.result}")


if __name__ == "__main__":
    asyncio.run(main())
