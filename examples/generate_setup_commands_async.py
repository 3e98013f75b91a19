"""Generate setup commands with the asyncio client, and save them to ``.codegen/setup.sh``.

The async twin of generate_setup_commands.py ("Setup Commands API / Generate Setup
Commands / Example" in advanced-api-endpoints.md). The file is written under a temporary
directory (or CODEGEN_EXAMPLE_OUTPUT_DIR).

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/generate_setup_commands_async.py
"""

import asyncio
import os
import tempfile
from pathlib import Path

from codegen_async import AsyncAgent

REPO_ID = int(os.environ.get("CODEGEN_EXAMPLE_REPO_ID", "456"))
PROMPT = """
Generate setup commands for this repository that:
1. Install all dependencies
2. Set up development environment
3. Initialize database
4. Run initial migrations
5. Start development server

Include commands for both macOS and Linux.
"""


async def main() -> None:
    out_dir = Path(os.environ.get("CODEGEN_EXAMPLE_OUTPUT_DIR") or tempfile.mkdtemp())
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        response = await agent.generate_setup_commands(repo_id=REPO_ID, prompt=PROMPT)
        print(f"Generation started: {response.status}")
        print(f"Agent run ID: {response.agent_run_id}")
        print(f"Web URL: {response.url}")

        status = await agent.wait_for_run(response.agent_run_id, timeout=600)

    if status.status == "completed":
        print("\n✓ Setup Commands Generated:")
        print(status.result)
        target = out_dir / ".codegen" / "setup.sh"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(status.result or "", encoding="utf-8")
        print(f"\n✓ Saved to {target}")
    else:
        print(f"\n❌ Generation {status.status}: {status.result}")


if __name__ == "__main__":
    asyncio.run(main())
