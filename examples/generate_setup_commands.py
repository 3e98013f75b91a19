"""Generate Setup Commands: the documentation's example, with the blocking client.

From advanced-api-endpoints.md, "Setup Commands API / Generate Setup Commands / Example".
Changed from the documentation only where marked "changed:": credentials, sleep lengths,
and the working directory (a temporary one, so that ``.codegen/setup.sh`` lands there).
Repository 456 is the documentation's id, and it exists in the emulator.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/generate_setup_commands.py
"""

import os
import tempfile
import time

from codegen_sync import Agent

# changed: credentials from the environment, scaled sleeps, and files written under a
# temporary directory (CODEGEN_EXAMPLE_OUTPUT_DIR to choose it).
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])
REPO_ID = int(os.environ.get("CODEGEN_EXAMPLE_REPO_ID", "456"))
SCALE = float(os.environ.get("CODEGEN_EXAMPLE_TIME_SCALE", "1"))
os.chdir(os.environ.get("CODEGEN_EXAMPLE_OUTPUT_DIR") or tempfile.mkdtemp(prefix="codegen-"))
os.makedirs(".codegen", exist_ok=True)

# From here on: the documentation's code, line for line.
# fmt: off
agent = Agent(org_id=ORG_ID)

# Generate setup commands
response = agent.generate_setup_commands(
    repo_id=REPO_ID,
    prompt="""
    Generate setup commands for this repository that:
    1. Install all dependencies
    2. Set up development environment
    3. Initialize database
    4. Run initial migrations
    5. Start development server

    Include commands for both macOS and Linux.
    """
)

print(f"Generation started: {response.status}")
print(f"Agent run ID: {response.agent_run_id}")
print(f"Web URL: {response.url}")

# Poll for completion
while True:
    status = agent.get_run(response.agent_run_id)

    if status.status in ["completed", "failed", "cancelled"]:
        break

    time.sleep(5 * SCALE)

# Extract generated commands
if status.status == "completed":
    print("\n✓ Setup Commands Generated:")
    print(status.result)

    # Save to repository
    with open(".codegen/setup.sh", "w") as f:
        f.write(status.result)

    print("\n✓ Saved to .codegen/setup.sh")
    print(f"  (in {os.getcwd()})")  # changed: say where the temporary directory is
