"""Team Directory: an organization's users by role, with incomplete profiles flagged.

From advanced-api-endpoints.md, "Users API / Advanced Pattern - Team Directory", with the
blocking client. Changed from the documentation only where marked "changed:": credentials.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/team_directory.py
"""

# The documentation has f-strings without placeholders; they are kept.
# ruff: noqa: F541
import os

from codegen_sync import Agent

# changed: credentials from CODEGEN_API_TOKEN / CODEGEN_ORG_ID / CODEGEN_API_BASE_URL.
ORG_ID = int(os.environ["CODEGEN_ORG_ID"])


# From here on: the documentation's code, line for line.
# fmt: off
def build_team_directory(org_id):
    """Build comprehensive team directory with stats."""

    agent = Agent(org_id=org_id)

    # Get all users
    users = agent.get_users(org_id=org_id)

    directory = {
        "total_users": users.total,
        "by_role": {
            "admins": [],
            "managers": [],
            "members": []
        },
        "github_usernames": [],
        "missing_profiles": []
    }

    for user in users.items:
        # Categorize by role
        if user.role == "ADMIN":
            directory["by_role"]["admins"].append(user)
        elif user.role == "MANAGER":
            directory["by_role"]["managers"].append(user)
        else:
            directory["by_role"]["members"].append(user)

        # Collect GitHub usernames
        directory["github_usernames"].append(user.github_username)

        # Check for missing profile info
        if not user.full_name or not user.email:
            directory["missing_profiles"].append(user.github_username)

    # Generate report
    print(f"Team Directory")
    print(f"=" * 50)
    print(f"Total Users: {directory['total_users']}")
    print(f"  Admins: {len(directory['by_role']['admins'])}")
    print(f"  Managers: {len(directory['by_role']['managers'])}")
    print(f"  Members: {len(directory['by_role']['members'])}")

    if directory["missing_profiles"]:
        print(f"\n⚠️ Users with incomplete profiles:")
        for username in directory["missing_profiles"]:
            print(f"  - @{username}")

    return directory

# Execute
directory = build_team_directory(org_id=ORG_ID)
