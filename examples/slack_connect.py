"""Slack Connect: generate a token that links a Slack account, and tell the user what to do.

From advanced-api-endpoints.md, "Slack Connect API": the "Example", then the
"Integration Flow" snippets (steps 1 and 2), with the blocking client. Changed from the
documentation only where marked "changed:": credentials.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/slack_connect.py
"""

# The documentation has f-strings without placeholders; they are kept.
# ruff: noqa: F541
import os

from codegen_sync import Agent

# changed: credentials from CODEGEN_API_TOKEN / CODEGEN_ORG_ID / CODEGEN_API_BASE_URL.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])

# From here on: the documentation's code, line for line (plus section markers).
# fmt: off
agent = Agent(org_id=ORG_ID)

# Generate Slack connect token
response = agent.generate_slack_connect_token(org_id=ORG_ID)

print(f"✓ Token generated: {response.token}")
print(f"⏰ Expires in: {response.expires_in_minutes} minutes")
print(f"\n📝 Instructions:")
print(f"1. Open Slack and find the Codegen bot")
print(f"2. Send this message in DM:")
print(f"   Connect my account: {response.token}")
print(f"3. Wait for confirmation from bot")

# --- Integration Flow, step 1: Generate Token
print()
response = agent.generate_slack_connect_token(org_id=ORG_ID)
token = response.token

# --- Integration Flow, step 2: Send to User
print(f"Send this to Codegen bot in Slack DM:")
print(f"Connect my account: {token}")
print(f"Token expires in {response.expires_in_minutes} minutes")
