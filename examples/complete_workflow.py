"""Complete Workflow: setup commands, a test run, log analysis on failure, and a fix run.

From advanced-api-endpoints.md, "Complete Workflow Example", with the blocking client.
Changed from the documentation only where marked "changed:": credentials, sleep lengths,
and a print of the outcome. Repository 456 is the documentation's id and exists in the
emulator; its sandbox's setup is broken, so a failed test run leads to a log analysis.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/complete_workflow.py
"""

import os
import time

from codegen_sync import Agent

# changed: credentials from the environment, scaled sleeps.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])
REPO_ID = int(os.environ.get("CODEGEN_EXAMPLE_REPO_ID", "456"))
SCALE = float(os.environ.get("CODEGEN_EXAMPLE_TIME_SCALE", "1"))


# From here on: the documentation's code, line for line.
# fmt: off
def complete_sandbox_workflow(org_id, repo_id):
    """
    Complete workflow:
    1. Generate setup commands
    2. Create sandbox
    3. Monitor sandbox health
    4. Analyze logs if issues occur
    5. Auto-fix problems
    """

    agent = Agent(org_id=org_id)

    # Step 1: Get current user
    current_user = agent.get_current_user()
    print(f"✓ Authenticated as: {current_user.full_name}")

    # Step 2: Generate setup commands
    print("\n📝 Generating setup commands...")
    setup_response = agent.generate_setup_commands(
        repo_id=repo_id,
        prompt="Generate comprehensive setup commands"
    )

    # Wait for setup commands
    setup_status = wait_for_agent(agent, setup_response.agent_run_id)

    if setup_status.status != "completed":
        print(f"❌ Setup generation failed: {setup_status.result}")
        return

    print("✓ Setup commands generated")

    # Step 3: Create agent run to test setup
    print("\n🔧 Testing setup in sandbox...")
    test_run = agent.run(
        prompt=f"""
        Execute the generated setup commands and verify:
        1. All dependencies install successfully
        2. Development environment works
        3. Tests pass

        Setup commands:
        {setup_status.result}
        """,
        repo_id=repo_id
    )

    # Monitor test run
    test_status = wait_for_agent(agent, test_run.id)

    if test_status.status == "completed":
        print("✓ Setup verified successfully")
        return {"success": True, "setup": setup_status.result}

    # Step 4: Analyze sandbox logs if failed
    print("\n🔍 Setup failed, analyzing logs...")

    # Get sandbox ID from test run metadata
    sandbox_id = test_status.metadata.get("sandbox_id")

    if sandbox_id:
        analysis = agent.analyze_sandbox_logs(sandbox_id=sandbox_id)

        # Wait for analysis
        analysis_status = wait_for_agent(agent, analysis.agent_run_id)

        if analysis_status.status == "completed":
            print("\n📊 Log Analysis Results:")
            print(analysis_status.result)

            # Step 5: Auto-fix based on analysis
            print("\n🔧 Attempting auto-fix...")
            fix_run = agent.run(
                prompt=f"""
                Fix the sandbox setup issues identified:

                Analysis:
                {analysis_status.result}

                Original Setup:
                {setup_status.result}

                Actions:
                1. Identify root causes
                2. Update setup commands
                3. Re-run setup
                4. Verify fixes
                """,
                repo_id=repo_id
            )

            fix_status = wait_for_agent(agent, fix_run.id)

            if fix_status.status == "completed":
                print("✓ Issues fixed successfully")
                return {
                    "success": True,
                    "fixed": True,
                    "analysis": analysis_status.result,
                    "fix": fix_status.result
                }

    return {"success": False, "error": test_status.result}

def wait_for_agent(agent, run_id, timeout=600):
    """Wait for agent completion with timeout."""
    start_time = time.time()

    while time.time() - start_time < timeout:
        status = agent.get_run(run_id)

        if status.status in ["completed", "failed", "cancelled"]:
            return status

        time.sleep(10 * SCALE)

    raise TimeoutError(f"Agent run {run_id} timed out")

# Execute workflow
result = complete_sandbox_workflow(org_id=ORG_ID, repo_id=REPO_ID)

# changed: show the outcome.
if result is None:
    print("\nWorkflow outcome: stopped early")
else:
    print(f"\nWorkflow outcome: success={result['success']}, fixed={result.get('fixed', False)}")
