"""Slack Connect with the asyncio client: a single-use token and what to send the bot.

The async twin of slack_connect.py ("Slack Connect API / Example" in
advanced-api-endpoints.md). ``connect_message`` is the exact text the Codegen bot expects,
and ``expires_at`` when the token stops working (10 minutes after it was issued).

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/slack_connect_async.py
"""

import asyncio

from codegen_async import AsyncAgent


async def main() -> None:
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        response = await agent.generate_slack_connect_token()

    print(f"✓ Token generated: {response.token}")
    print(f"⏰ Expires in: {response.expires_in_minutes} minutes ({response.expires_at:%H:%M} UTC)")
    print("\n📝 Instructions:")
    print("1. Open Slack and find the Codegen bot")
    print("2. Send this message in DM:")
    print(f"   {response.connect_message}")
    print("3. Wait for confirmation from bot")


if __name__ == "__main__":
    asyncio.run(main())
