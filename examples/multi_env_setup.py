"""Multi-Environment Setup: setup commands for development, staging and production.

From advanced-api-endpoints.md, "Setup Commands API / Advanced Pattern - Multi-Environment
Setup", with the blocking client. Changed from the documentation only where marked
"changed:": credentials, sleep lengths, the working directory (a temporary one), and a call
of the function. The client keeps the 5-a-minute quota by itself, so the documentation's
``time.sleep(12)`` is not needed; it is kept (scaled) to stay close to the text. See
multi_env_setup_async.py for the concurrent version.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/multi_env_setup.py
"""

import os
import tempfile
import time

from codegen_sync import Agent

# changed: credentials from the environment, scaled sleeps, files under a temporary dir.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])
REPO_ID = int(os.environ.get("CODEGEN_EXAMPLE_REPO_ID", "456"))
SCALE = float(os.environ.get("CODEGEN_EXAMPLE_TIME_SCALE", "1"))
os.chdir(os.environ.get("CODEGEN_EXAMPLE_OUTPUT_DIR") or tempfile.mkdtemp(prefix="codegen-"))
os.makedirs(".codegen", exist_ok=True)


# From here on: the documentation's code, line for line.
# fmt: off
def generate_multi_env_setup(org_id, repo_id):
    """Generate setup commands for multiple environments."""

    agent = Agent(org_id=org_id)

    environments = ["development", "staging", "production"]
    setup_commands = {}

    for env in environments:
        print(f"Generating setup for {env}...")

        response = agent.generate_setup_commands(
            repo_id=repo_id,
            prompt=f"""
            Generate setup commands for {env} environment:

            Requirements for {env}:
            - Environment-specific configuration
            - Appropriate security measures
            - Database connection setup
            - Service dependencies
            - Health checks

            Format output as shell script with comments.
            """
        )

        # Wait for completion
        status = wait_for_agent(agent, response.agent_run_id)

        if status.status == "completed":
            setup_commands[env] = status.result

            # Save to environment-specific file
            filename = f".codegen/setup-{env}.sh"
            with open(filename, "w") as f:
                f.write(status.result)

            print(f"✓ Saved {env} setup to {filename}")

        time.sleep(12 * SCALE)  # Respect rate limit (5 req/min)

    return setup_commands

def wait_for_agent(agent, run_id, timeout=300):
    """Wait for agent completion with timeout."""
    start_time = time.time()

    while time.time() - start_time < timeout:
        status = agent.get_run(run_id)

        if status.status in ["completed", "failed", "cancelled"]:
            return status

        time.sleep(5 * SCALE)

    raise TimeoutError(f"Agent run {run_id} timed out")


# changed: the documentation defines the function; this runs it.
if __name__ == "__main__":
    commands = generate_multi_env_setup(org_id=ORG_ID, repo_id=REPO_ID)
    print(f"Generated setup commands for: {', '.join(commands)} (in {os.getcwd()})")
