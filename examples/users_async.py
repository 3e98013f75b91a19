"""The Users API with the asyncio client: current user, one user, and a team directory.

The async twin of current_user.py, get_user.py, list_users.py and team_directory.py
("Users API" in advanced-api-endpoints.md). ``iter_users`` walks every page, so the
directory is complete even past the 100 users one page holds.

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/users_async.py
"""

import asyncio
import os
from collections import defaultdict

from codegen_async import AsyncAgent, User

USER_ID = int(os.environ.get("CODEGEN_EXAMPLE_USER_ID", "1002"))


async def main() -> None:
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        # Independent reads, at once: the current user and one member.
        me, member = await asyncio.gather(agent.get_current_user(), agent.get_user(USER_ID))
        users = [user async for user in agent.iter_users()]

    print(f"User: {me.full_name} ({me.github_username}), role {me.role}")
    print(f"Member {member.id}: {member.full_name} (@{member.github_username}), role {member.role}")

    by_role: dict[str, list[User]] = defaultdict(list)
    for user in users:
        by_role[str(user.role or "MEMBER")].append(user)
    missing = [u.github_username for u in users if not u.full_name or not u.email]

    print("\nTeam Directory")
    print("=" * 50)
    print(f"Total Users: {len(users)}")
    for role in ("ADMIN", "MANAGER", "MEMBER"):
        print(f"  {role.title()}s: {len(by_role[role])}")
    if missing:
        print("\n⚠️ Users with incomplete profiles:")
        for username in missing:
            print(f"  - @{username}")


if __name__ == "__main__":
    asyncio.run(main())
