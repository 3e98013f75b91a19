"""The complete sandbox workflow with the asyncio client.

The async twin of complete_workflow.py ("Complete Workflow Example" in
advanced-api-endpoints.md): generate setup commands, test them in a sandbox, analyse the
sandbox's logs if the test fails, and start a fix run. ``wait_for_run`` replaces the
documentation's ``wait_for_agent`` polling loop, with the same 600 s limit.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/complete_workflow_async.py
"""

import asyncio
import os
from typing import Any

from codegen_async import AsyncAgent

REPO_ID = int(os.environ.get("CODEGEN_EXAMPLE_REPO_ID", "456"))
TIMEOUT = 600.0


async def complete_sandbox_workflow(agent: AsyncAgent, repo_id: int) -> dict[str, Any] | None:
    """Setup commands -> test run -> (on failure) log analysis -> fix run."""
    # Step 1: the current user
    current_user = await agent.get_current_user()
    print(f"✓ Authenticated as: {current_user.full_name}")

    # Step 2: setup commands
    print("\n📝 Generating setup commands...")
    setup_status = await agent.generate_setup_commands_and_wait(
        repo_id, "Generate comprehensive setup commands", timeout=TIMEOUT
    )
    if setup_status.status != "completed":
        print(f"❌ Setup generation failed: {setup_status.result}")
        return None
    print(f"✓ Setup commands generated (agent run {setup_status.id})")

    # Step 3: test the setup in a sandbox
    print("\n🔧 Testing setup in sandbox...")
    test_status = await agent.run_and_wait(
        "Execute the generated setup commands and verify:\n"
        "1. All dependencies install successfully\n"
        "2. Development environment works\n"
        "3. Tests pass\n\n"
        f"Setup commands:\n{setup_status.result}",
        repo_id=repo_id,
        timeout=TIMEOUT,
    )
    if test_status.status == "completed":
        print(f"✓ Setup verified successfully (agent run {test_status.id})")
        return {"success": True, "setup": setup_status.result}

    # Step 4: analyse the sandbox's logs
    print(f"\n🔍 Setup failed (agent run {test_status.id}), analyzing logs...")
    sandbox_id = (test_status.metadata or {}).get("sandbox_id")
    if sandbox_id:
        analysis_status = await agent.analyze_sandbox_logs_and_wait(sandbox_id, timeout=TIMEOUT)
        if analysis_status.status == "completed":
            print("\n📊 Log Analysis Results:")
            print(analysis_status.result)

            # Step 5: fix what the analysis found
            print("\n🔧 Attempting auto-fix...")
            fix_status = await agent.run_and_wait(
                "Fix the sandbox setup issues identified:\n\n"
                f"Analysis:\n{analysis_status.result}\n\n"
                f"Original Setup:\n{setup_status.result}\n\n"
                "Actions:\n1. Identify root causes\n2. Update setup commands\n"
                "3. Re-run setup\n4. Verify fixes",
                repo_id=repo_id,
                timeout=TIMEOUT,
            )
            if fix_status.status == "completed":
                print(f"✓ Issues fixed successfully (agent run {fix_status.id})")
                return {
                    "success": True,
                    "fixed": True,
                    "analysis": analysis_status.result,
                    "fix": fix_status.result,
                }
    return {"success": False, "error": test_status.result}


async def main() -> None:
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        result = await complete_sandbox_workflow(agent, REPO_ID)
    if result is None:
        print("\nWorkflow outcome: stopped early")
    else:
        print(
            f"\nWorkflow outcome: success={result['success']}, fixed={result.get('fixed', False)}"
        )


if __name__ == "__main__":
    asyncio.run(main())
