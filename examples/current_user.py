"""Get Current User Info: who the API token belongs to, and their role.

From advanced-api-endpoints.md, "Users API / Get Current User Info / Example", with the
blocking client. Changed from the documentation only where marked "changed:": credentials.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/current_user.py
"""

import os

from codegen_sync import Agent

# changed: credentials from CODEGEN_API_TOKEN / CODEGEN_ORG_ID / CODEGEN_API_BASE_URL.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])

# From here on: the documentation's code, line for line.
# fmt: off
agent = Agent(org_id=ORG_ID)

# Get current user info
user = agent.get_current_user()

print(f"User: {user.full_name} ({user.github_username})")
print(f"Email: {user.email}")
print(f"Role: {user.role}")
print(f"Avatar: {user.avatar_url}")

# Check permissions
if user.role == "ADMIN":
    print("✓ User has admin access")
elif user.role == "MANAGER":
    print("✓ User has manager access")
else:
    print("ℹ️ User has member access")
