"""The words the emulated agents write: sandbox logs, analyses, setup scripts, run logs.

Everything here is a pure function of the run and the seeded world, so reading a run never
draws from the emulator's random generator (reads must not change what later runs do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from ..models import AgentRunLog
from ._records import (
    TERMINAL,
    PullRequestRecord,
    RepoRecord,
    RunRecord,
    SandboxRecord,
    SetupFailure,
    iso,
)

__all__ = [
    "FAILURES",
    "World",
    "pr_title",
    "run_logs",
    "run_result",
    "run_summary",
    "sandbox_logs",
]


class World(Protocol):
    """What the words read of the emulator's state (``EmulatorState`` is one).

    A protocol rather than ``EmulatorState`` itself, so this module imports only the records
    and the state can import it back without a cycle.
    """

    @property
    def sandboxes(self) -> Mapping[int, SandboxRecord]: ...
    @property
    def repos(self) -> Mapping[int, RepoRecord]: ...
    @property
    def pull_requests(self) -> Mapping[int, PullRequestRecord]: ...
    def pull_request_url(self, pr: PullRequestRecord) -> str: ...
    def run_result(self, run: RunRecord, status: str) -> str | None: ...


FAILURES: Final[dict[str, SetupFailure]] = {
    "npm": SetupFailure(
        command="npm ci",
        error="npm ERR! ERESOLVE unable to resolve dependency tree",
        detail=(
            "npm ERR! code ERESOLVE",
            "npm ERR! ERESOLVE unable to resolve dependency tree",
            "npm ERR!",
            "npm ERR! While resolving: web-dashboard@2.4.0",
            "npm ERR! Found: react@18.2.0",
            "npm ERR! node_modules/react",
            'npm ERR!   react@"^18.2.0" from the root project',
            "npm ERR!",
            "npm ERR! Could not resolve dependency:",
            'npm ERR! peer react@"^16.8.5 || ^17.0.0" from react-beautiful-dnd@13.1.1',
            "npm ERR!",
            "npm ERR! Fix the upstream dependency conflict, or retry this command with "
            "--force or --legacy-peer-deps",
        ),
        cause=(
            "react-beautiful-dnd@13.1.1 declares a peer dependency on React 16 or 17, but the "
            "project uses React 18.2.0, so npm 7+ refuses to build the dependency tree."
        ),
        fix=(
            "Replace react-beautiful-dnd with its maintained fork @hello-pangea/dnd, which "
            "supports React 18; as a stop-gap, install with --legacy-peer-deps."
        ),
        fix_commands=(
            "npm uninstall react-beautiful-dnd",
            "npm install @hello-pangea/dnd@^16",
            "npm ci",
        ),
    ),
    "python": SetupFailure(
        command="python -m alembic upgrade head",
        error="ModuleNotFoundError: No module named 'psycopg2'",
        detail=(
            "Traceback (most recent call last):",
            '  File "/workspace/migrations/env.py", line 9, in <module>',
            "    from app.db import engine",
            '  File "/workspace/app/db.py", line 3, in <module>',
            "    import psycopg2",
            "ModuleNotFoundError: No module named 'psycopg2'",
        ),
        cause=(
            "The database driver psycopg2 is imported by app/db.py but is not listed in "
            "requirements.txt, so the migration step cannot import the application."
        ),
        fix=(
            "Add psycopg2-binary to requirements.txt (or install libpq-dev and build "
            "psycopg2), then re-run the migrations."
        ),
        fix_commands=(
            "echo 'psycopg2-binary>=2.9' >> requirements.txt",
            "pip install -r requirements.txt",
            "python -m alembic upgrade head",
        ),
    ),
    "postgres": SetupFailure(
        command="go test ./...",
        error="dial tcp 127.0.0.1:5432: connect: connection refused",
        detail=(
            "--- FAIL: TestRouteStore (0.00s)",
            "    store_test.go:31: open database: dial tcp 127.0.0.1:5432: connect: "
            "connection refused",
            "FAIL\tgithub.com/acme-robotics/routing-engine/store\t0.012s",
        ),
        cause=(
            "The integration tests expect PostgreSQL on 127.0.0.1:5432, but the setup commands "
            "never start the database service."
        ),
        fix=(
            "Start PostgreSQL before the tests and create the test database; export "
            "DATABASE_URL so the tests find it."
        ),
        fix_commands=(
            "sudo service postgresql start",
            "sudo -u postgres createdb routing_test",
            "export DATABASE_URL=postgres://postgres@127.0.0.1:5432/routing_test",
            "go test ./...",
        ),
    ),
    "rust": SetupFailure(
        command="cargo build --release",
        error="error: linker `cc` not found",
        detail=(
            "   Compiling hyperion v0.9.1 (/workspace)",
            "error: linker `cc` not found",
            "  |",
            "  = note: No such file or directory (os error 2)",
            'error: could not compile `hyperion` (bin "hyperion") due to 1 previous error',
        ),
        cause="The sandbox image has no C toolchain, which rustc needs to link binaries.",
        fix="Install build-essential before building.",
        fix_commands=("sudo apt-get install -y build-essential", "cargo build --release"),
    ),
}

# Setup steps that ran before the failure, per toolchain.
_SETUP_STEPS: Final[dict[str, tuple[str, ...]]] = {
    "npm": ("nvm install 20", "nvm use 20", "node --version", "npm --version"),
    "python": (
        "python3.11 -m venv .venv",
        "source .venv/bin/activate",
        "pip install -r requirements.txt",
    ),
    "postgres": ("go version", "go mod download", "go build ./..."),
    "rust": ("rustup default stable", "cargo fetch"),
}


def sandbox_logs(repo_full_name: str, toolchain: str, started: str) -> str:
    """The setup log of a sandbox of ``repo_full_name`` whose setup failed."""
    failure = FAILURES[toolchain]
    lines = [
        f"[{started}] Creating sandbox for {repo_full_name}",
        f"$ git clone https://github.com/{repo_full_name}.git /workspace",
        "Cloning into '/workspace'...",
        "$ cd /workspace",
    ]
    for step in _SETUP_STEPS[toolchain]:
        lines.append(f"$ {step}")
    lines.append(f"$ {failure.command}")
    lines.extend(failure.detail)
    lines.append(f"Setup command failed with exit code {failure.exit_code}: {failure.command}")
    return "\n".join(lines) + "\n"


def _first_line(text: str, limit: int = 72) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def pr_title(prompt: str) -> str:
    """A pull request title from a run's prompt."""
    return _first_line(prompt, 60) or "Changes by Codegen"


def _analysis(state: World, run: RunRecord) -> str:
    box = state.sandboxes.get(run.sandbox_id) if run.sandbox_id is not None else None
    if box is None or box.failure is None:
        return "Analysis complete: no error found in the setup logs; no solution needed."
    failure = box.failure
    repo = state.repos.get(box.repo_id) if box.repo_id is not None else None
    where = f" ({repo.full_name})" if repo is not None else ""
    fix = "\n".join(f"    {cmd}" for cmd in failure.fix_commands)
    return (
        f"Analysis of the setup logs of sandbox {box.id}{where}\n"
        f"\n"
        f"Error found: {failure.error}\n"
        f"Failing step: `{failure.command}` exited with code {failure.exit_code}.\n"
        f"Root cause: {failure.cause}\n"
        f"\n"
        f"Suggested solution: {failure.fix}\n"
        f"Commands:\n{fix}\n"
    )


_SCRIPTS: Final[dict[str | None, tuple[str, ...]]] = {
    "TypeScript": (
        "# Node.js toolchain",
        'export NVM_DIR="$HOME/.nvm"',
        '[ -s "$NVM_DIR/nvm.sh" ] || curl -fsSL '
        "https://raw.githubusercontent.com/nvm-sh/nvm/v0.40.1/install.sh | bash",
        '. "$NVM_DIR/nvm.sh"',
        "nvm install 20 && nvm use 20",
        "",
        "# Dependencies",
        "npm ci",
        "",
        "# Environment and database",
        "cp -n .env.example .env || true",
        "npm run db:migrate",
        "",
        "# Check the build",
        "npm run build",
        "npm test -- --watch=false",
    ),
    "Python": (
        "# Python toolchain (macOS: brew install python@3.11; Linux: apt-get install python3.11)",
        "python3.11 -m venv .venv",
        ". .venv/bin/activate",
        "python -m pip install --upgrade pip",
        "",
        "# Dependencies",
        "pip install -r requirements.txt -r requirements-dev.txt",
        "",
        "# Environment and database",
        "cp -n .env.example .env || true",
        "python -m alembic upgrade head",
        "",
        "# Check the build",
        "pytest -q",
    ),
    "Go": (
        "# Go toolchain (macOS: brew install go; Linux: apt-get install golang-go)",
        "go version",
        "go mod download",
        "",
        "# Database for the integration tests",
        "sudo service postgresql start || brew services start postgresql",
        "createdb routing_test || true",
        "export DATABASE_URL=postgres://postgres@127.0.0.1:5432/routing_test",
        "",
        "# Check the build",
        "go build ./...",
        "go test ./...",
    ),
    "C++": (
        "# Toolchain (macOS: xcode-select --install; Linux: apt-get install build-essential)",
        "sudo apt-get install -y build-essential cmake ninja-build || brew install cmake ninja",
        "",
        "# Configure and build",
        "cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Debug",
        "cmake --build build",
        "",
        "# Check the build",
        "ctest --test-dir build --output-on-failure",
    ),
    None: (
        "# No build system detected: install the basics",
        "git submodule update --init --recursive",
        "ls -la",
    ),
}


def _setup_script(state: World, run: RunRecord) -> str:
    repo = state.repos.get(run.repo_id) if run.repo_id is not None else None
    name = repo.full_name if repo is not None else "the repository"
    language = repo.language if repo is not None else None
    body = _SCRIPTS.get(language, _SCRIPTS[None])
    header = [
        "#!/usr/bin/env bash",
        f"# Setup commands for {name} ({language or 'unknown language'}), written by Codegen.",
    ]
    request = _first_line(run.prompt, 100)
    if request:
        header.append(f"# Request: {request}")
    header += ["set -euo pipefail", 'cd "$(git rev-parse --show-toplevel)"', ""]
    return "\n".join([*header, *body]) + "\n"


def run_result(state: World, run: RunRecord, status: str) -> str:
    """The ``result`` of a finished run that nobody forced to an end."""
    if status == "completed":
        if run.kind == "analysis":
            return _analysis(state, run)
        if run.kind == "setup":
            return _setup_script(state, run)
        text = f"Done: {_first_line(run.prompt)}."
        pr = state.pull_requests.get(run.pr_id) if run.pr_id is not None else None
        if pr is not None:
            text += (
                f"\n\nI made the change in {state.repos[pr.repo_id].full_name}, the test suite "
                f"passes, and I opened a pull request: {state.pull_request_url(pr)}"
            )
        return text
    # failed
    if run.kind == "analysis":
        return (
            f"Log analysis failed: the agent timed out while reading the setup logs of "
            f"sandbox {run.sandbox_id}."
        )
    if run.kind == "setup":
        return "Setup-command generation failed: the repository could not be cloned (HTTP 503)."
    if run.sandbox_id is not None:
        box = state.sandboxes.get(run.sandbox_id)
        command = box.failure.command if box is not None and box.failure is not None else "setup"
        return (
            f"The agent stopped with an error: `{command}` exited with code 1 in sandbox "
            f"{run.sandbox_id}. Analyze the sandbox logs for details."
        )
    return "The agent stopped with an error: the model provider returned HTTP 529 (overloaded)."


def run_summary(state: World, run: RunRecord, status: str) -> str:
    """A one-line ``summary`` of a run that is no longer running."""
    if status == "paused":
        return "Waiting for your reply before continuing."
    if status == "cancelled":
        return "Cancelled."
    if status == "failed":
        return "The agent run failed."
    if run.kind == "analysis":
        box = state.sandboxes.get(run.sandbox_id) if run.sandbox_id is not None else None
        if box is not None and box.failure is not None:
            return f"Found 1 error in the setup logs of sandbox {box.id}: {box.failure.error}"
        return "No errors found in the setup logs."
    if run.kind == "setup":
        return "Generated setup commands."
    return _first_line(run.prompt, 100) or "Completed."


# Each stretch of work logs these steps, spread over its duration: (fraction, entry).
_STEPS: Final[dict[str, tuple[tuple[float, dict[str, Any]], ...]]] = {
    "run": (
        (
            0.05,
            {
                "message_type": "ACTION",
                "tool_name": "ripgrep_search",
                "thought": "Let me find the code this task is about.",
                "tool_input": {"query": "TODO", "path": "."},
            },
        ),
        (
            0.3,
            {
                "message_type": "ACTION",
                "tool_name": "view_file",
                "thought": "Reading the most relevant file.",
                "tool_input": {"filepath": "src/index.ts"},
            },
        ),
        (
            0.6,
            {
                "message_type": "ACTION",
                "tool_name": "edit_file",
                "thought": "Making the change.",
                "tool_input": {"filepath": "src/index.ts"},
            },
        ),
        (
            0.85,
            {
                "message_type": "ACTION",
                "tool_name": "run_command",
                "thought": "Running the tests.",
                "tool_input": {"command": "npm test"},
            },
        ),
    ),
    "analysis": (
        (
            0.1,
            {
                "message_type": "ACTION",
                "tool_name": "read_sandbox_logs",
                "thought": "Reading the sandbox's setup logs.",
            },
        ),
        (
            0.5,
            {
                "message_type": "ACTION",
                "tool_name": "ripgrep_search",
                "thought": "Looking for the first error in the logs.",
                "tool_input": {"query": "ERR|Error|error:|refused"},
            },
        ),
        (
            0.8,
            {
                "message_type": "PLAN_EVALUATION",
                "thought": "The first error explains the failure; writing up the fix.",
            },
        ),
    ),
    "setup": (
        (
            0.1,
            {
                "message_type": "ACTION",
                "tool_name": "list_directory",
                "thought": "Looking at the repository layout.",
                "tool_input": {"path": "."},
            },
        ),
        (
            0.4,
            {
                "message_type": "ACTION",
                "tool_name": "view_file",
                "thought": "Reading the build manifest.",
            },
        ),
        (
            0.8,
            {
                "message_type": "ACTION",
                "tool_name": "create_file",
                "thought": "Writing the setup script.",
                "tool_input": {"filepath": ".codegen/setup.sh"},
            },
        ),
    ),
}


def run_logs(state: World, run: RunRecord, now: float) -> list[AgentRunLog]:
    """Every log entry of ``run`` written by unix time ``now``, oldest first."""
    status = run.status(now)
    end = run.forced_at if run.forced is not None and run.forced_at is not None else now
    logs: list[AgentRunLog] = []
    for index, (start, deadline, prompt) in enumerate(run.segments):
        logs.append(
            AgentRunLog(
                agent_run_id=run.id,
                created_at=iso(start),
                message_type="USER_MESSAGE",
                thought=None,
                observation=prompt if index else _first_line(prompt, 500),
            )
        )
        for fraction, entry in _STEPS[run.kind]:
            at = start + fraction * (deadline - start)
            if at > end or at > now:
                break
            observation: dict[str, Any] | str | None = {"status": "success"}
            if entry.get("tool_name") == "read_sandbox_logs":
                box = state.sandboxes.get(run.sandbox_id) if run.sandbox_id is not None else None
                observation = (box.logs or "") if box is not None else ""
            logs.append(
                AgentRunLog(
                    agent_run_id=run.id,
                    created_at=iso(at),
                    message_type=entry["message_type"],
                    tool_name=entry.get("tool_name"),
                    thought=entry.get("thought"),
                    observation=observation if entry.get("tool_name") else None,
                    tool_input=entry.get("tool_input"),
                    tool_output={"exit_code": 0} if entry.get("tool_name") else None,
                )
            )
    if status in TERMINAL:
        finished = run.finished_at(now) or now
        result = state.run_result(run, status) or ""
        logs.append(
            AgentRunLog(
                agent_run_id=run.id,
                created_at=iso(finished),
                message_type="FINAL_ANSWER" if status == "completed" else "ERROR",
                thought=result,
            )
        )
    return logs
