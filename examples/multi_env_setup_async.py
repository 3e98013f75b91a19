"""Setup commands for several environments at once, with the asyncio client.

The async twin of multi_env_setup.py ("Setup Commands API / Advanced Pattern -
Multi-Environment Setup" in advanced-api-endpoints.md). The documentation generates one
environment at a time and sleeps 12 s between calls to respect the quota of 5 a minute;
here every call starts at once and the client's rate limiter keeps the quota, so the
whole job takes about as long as the slowest generation. Runs are reported as they finish
(``as_completed``).

    CODEGEN_API_TOKEN=... CODEGEN_ORG_ID=... python examples/multi_env_setup_async.py
"""

import asyncio
import os
import tempfile
import time
from pathlib import Path

from codegen_async import AsyncAgent

REPO_ID = int(os.environ.get("CODEGEN_EXAMPLE_REPO_ID", "456"))
ENVIRONMENTS = ("development", "staging", "production")


def prompt_for(env: str) -> str:
    return f"""
    Generate setup commands for {env} environment:

    Requirements for {env}:
    - Environment-specific configuration
    - Appropriate security measures
    - Database connection setup
    - Service dependencies
    - Health checks

    Format output as shell script with comments.
    """


async def generate_multi_env_setup(
    agent: AsyncAgent, repo_id: int, out_dir: Path
) -> dict[str, str]:
    """Generate setup commands for every environment concurrently; save each to a file."""
    started = time.monotonic()
    responses = await asyncio.gather(
        *(
            agent.generate_setup_commands(repo_id=repo_id, prompt=prompt_for(env))
            for env in ENVIRONMENTS
        )
    )
    env_of = {r.agent_run_id: env for r, env in zip(responses, ENVIRONMENTS, strict=True)}
    print(f"Started {len(env_of)} generations: agent runs {', '.join(map(str, env_of))}")

    setup_commands: dict[str, str] = {}
    async for run in agent.as_completed(env_of, timeout=600):
        env = env_of[run.id]
        if run.status != "completed":
            print(f"❌ {env}: {run.status}: {run.result}")
            continue
        setup_commands[env] = run.result or ""
        target = out_dir / ".codegen" / f"setup-{env}.sh"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(setup_commands[env], encoding="utf-8")
        print(f"✓ Saved {env} setup to {target}")

    print(
        f"Done in {time.monotonic() - started:.1f}s; the rate limiter held calls back "
        f"{agent.stats.rate_limit_wait_seconds:.1f}s"
    )
    return setup_commands


async def main() -> None:
    out_dir = Path(os.environ.get("CODEGEN_EXAMPLE_OUTPUT_DIR") or tempfile.mkdtemp())
    async with AsyncAgent() as agent:  # CODEGEN_API_TOKEN, CODEGEN_ORG_ID
        commands = await generate_multi_env_setup(agent, REPO_ID, out_dir)
    print(f"Generated setup commands for: {', '.join(sorted(commands))}")


if __name__ == "__main__":
    asyncio.run(main())
