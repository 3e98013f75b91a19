"""Get User: one member of an organization.

From advanced-api-endpoints.md, "Users API / Get User / Example", with the blocking client.
Changed from the documentation only where marked "changed:": credentials and the ids
(the documentation's user 456 does not exist in the emulator; its users are 1001-1030).

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/get_user.py
"""

import os

from codegen_sync import Agent

# changed: credentials from the environment, and a user that exists.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])
USER_ID = int(os.environ.get("CODEGEN_EXAMPLE_USER_ID", "1002"))

# From here on: the documentation's code, line for line.
# fmt: off
agent = Agent(org_id=ORG_ID)

# Get specific user
user = agent.get_user(org_id=ORG_ID, user_id=USER_ID)

print(f"User: {user.full_name}")
print(f"GitHub: @{user.github_username}")
print(f"Role: {user.role}")
