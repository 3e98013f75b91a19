"""Analyze Sandbox Logs: the documentation's example, with the blocking client.

From advanced-api-endpoints.md, "Sandbox API / Analyze Sandbox Logs / Example". Changed from
the documentation only where marked "changed:": credentials and ids come from the
environment, and the sleeps are multiplied by CODEGEN_EXAMPLE_TIME_SCALE.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/analyze_sandbox_logs.py
"""

import os
import time

from codegen_sync import Agent

# changed: credentials from CODEGEN_API_TOKEN / CODEGEN_ORG_ID / CODEGEN_API_BASE_URL,
# a sandbox that exists (the emulator's sandbox 1 has setup logs with an error in them),
# and sleeps scaled to the emulator's clock.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])
SANDBOX_ID = int(os.environ.get("CODEGEN_EXAMPLE_SANDBOX_ID", "1"))
SCALE = float(os.environ.get("CODEGEN_EXAMPLE_TIME_SCALE", "1"))

# From here on: the documentation's code, line for line.
# fmt: off
agent = Agent(org_id=ORG_ID)

# Step 1: Start log analysis
response = agent.analyze_sandbox_logs(sandbox_id=SANDBOX_ID)

print(f"Analysis started: {response.message}")
print(f"Agent run ID: {response.agent_run_id}")

# Step 2: Poll for results
while True:
    status = agent.get_run(response.agent_run_id)

    print(f"Status: {status.status}")

    if status.status in ["completed", "failed", "cancelled"]:
        break

    time.sleep(5 * SCALE)

# Step 3: Check analysis results
if status.status == "completed":
    print("\n✓ Log Analysis Complete:")
    print(f"Summary: {status.summary}")
    print(f"Result: {status.result}")

    # Extract insights
    if "error" in status.result.lower():
        print("\n⚠️ Errors found in sandbox setup")
    if "solution" in status.result.lower():
        print("✓ Suggested solutions available")
else:
    print(f"\n❌ Analysis failed: {status.result}")
