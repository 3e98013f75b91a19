"""Get Users (List): an organization's users, grouped by role.

From advanced-api-endpoints.md, "Users API / Get Users (List) / Example", with the blocking
client. Changed from the documentation only where marked "changed:": credentials.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/list_users.py
"""

import os

from codegen_sync import Agent

# changed: credentials from CODEGEN_API_TOKEN / CODEGEN_ORG_ID / CODEGEN_API_BASE_URL.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])

# From here on: the documentation's code, line for line.
# fmt: off
agent = Agent(org_id=ORG_ID)

# Get all users
users = agent.get_users(org_id=ORG_ID)

print(f"Total users: {users.total}")

# Group by role
admins = [u for u in users.items if u.role == "ADMIN"]
managers = [u for u in users.items if u.role == "MANAGER"]
members = [u for u in users.items if u.role == "MEMBER"]

print(f"\nAdmins: {len(admins)}")
for admin in admins:
    print(f"  - {admin.full_name} (@{admin.github_username})")

print(f"\nManagers: {len(managers)}")
for manager in managers:
    print(f"  - {manager.full_name} (@{manager.github_username})")

print(f"\nMembers: {len(members)}")
