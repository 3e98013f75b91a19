"""Every example of ``examples/`` runs against the emulator, says what the documentation
says it will, and (for the blocking ones) is the documentation's code; the quick-start
notebook runs too."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from codegen_async.emulator import EmulatorThread

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = Path(__file__).resolve().parent / "data" / "advanced-api-endpoints.md"
TIME_SCALE = 0.01
HELPER = "run_against_emulator.py"

# What each example must print (each fragment somewhere in its standard output).
EXPECTED: dict[str, tuple[str, ...]] = {
    "analyze_sandbox_logs.py": (
        "Analysis started: Analysis started for sandbox logs",
        "Status: completed",
        "✓ Log Analysis Complete:",
        "Summary: Found 1 error in the setup logs of sandbox 1",
        "⚠️ Errors found in sandbox setup",
        "✓ Suggested solutions available",
    ),
    "analyze_sandbox_logs_async.py": (
        "Agent run ID: ",
        "✓ Log Analysis Complete:",
        "⚠️ Errors found in sandbox setup",
        "✓ Suggested solutions available",
    ),
    "troubleshoot_sandbox.py": ("Troubleshooting result: {'success': True, 'fix_run_id': ",),
    "troubleshoot_sandbox_async.py": (
        "Sandbox 1: {'success': True, 'fix_run_id': ",
        "Sandbox 2: {'success': False, 'error': 'No logs available for analysis'}",
        "Sandbox 3: {'success': True, 'fix_run_id': ",
    ),
    "generate_setup_commands.py": (
        "Generation started: running",
        "Web URL: https://",
        "✓ Setup Commands Generated:",
        "#!/usr/bin/env bash",
        "✓ Saved to .codegen/setup.sh",
    ),
    "generate_setup_commands_async.py": ("✓ Setup Commands Generated:", "npm ci", "✓ Saved to "),
    "multi_env_setup.py": (
        "Generating setup for development...",
        "✓ Saved development setup to .codegen/setup-development.sh",
        "✓ Saved staging setup to .codegen/setup-staging.sh",
        "✓ Saved production setup to .codegen/setup-production.sh",
        "Generated setup commands for: development, staging, production",
    ),
    "multi_env_setup_async.py": (
        "Started 3 generations",
        "✓ Saved development setup to ",
        "✓ Saved production setup to ",
        "Generated setup commands for: development, production, staging",
    ),
    "slack_connect.py": (
        "✓ Token generated: ",
        "⏰ Expires in: 10 minutes",
        "   Connect my account: ",
        "Token expires in 10 minutes",
    ),
    "slack_connect_async.py": ("✓ Token generated: ", "   Connect my account: "),
    "slack_onboarding.py": (
        "✓ Onboarding email sent to new.hire@example.com",
        "(expires in 10 min)",
    ),
    "current_user.py": ("Role: ADMIN", "✓ User has admin access"),
    "get_user.py": ("User: ", "GitHub: @", "Role: "),
    "list_users.py": ("Total users: 30", "Admins: 3", "Managers: 7", "Members: 20"),
    "team_directory.py": (
        "Team Directory",
        "Total Users: 30",
        "  Managers: 7",
        "⚠️ Users with incomplete profiles:",
    ),
    "users_async.py": ("role ADMIN", "Member 1002: ", "Total Users: 30", "  Managers: 7"),
    # The test run is made to fail (see ``fail_test_runs``), so both reach the fix run.
    "complete_workflow.py": (
        "✓ Authenticated as: ",
        "✓ Setup commands generated",
        "🔍 Setup failed, analyzing logs...",
        "📊 Log Analysis Results:",
        "Error found: npm ERR! ERESOLVE",
        "✓ Issues fixed successfully",
        "Workflow outcome: success=True, fixed=True",
    ),
    "complete_workflow_async.py": (
        "🔍 Setup failed (agent run ",
        "📊 Log Analysis Results:",
        "✓ Issues fixed successfully",
        "Workflow outcome: success=True, fixed=True",
    ),
}

# The documentation's code blocks (0-based, in page order) that each blocking example holds.
FROM_DOCS: dict[str, tuple[int, ...]] = {
    "analyze_sandbox_logs.py": (0,),
    "troubleshoot_sandbox.py": (1,),
    "generate_setup_commands.py": (2,),
    "multi_env_setup.py": (3,),
    "slack_connect.py": (6, 4, 5),
    "slack_onboarding.py": (7,),
    "current_user.py": (8,),
    "get_user.py": (9,),
    "list_users.py": (10,),
    "team_directory.py": (11,),
    "complete_workflow.py": (12,),
}
# Lines of the documentation's placeholders ("Implementation specific to your ...") that
# the examples fill in.
PLACEHOLDER_LINES = frozenset(
    {
        "import smtplib",
        "    # Implementation specific to your needs",
        "    return []",
        "    # Implementation specific to your email service",
        "    pass",
    }
)


class FailTestRuns(threading.Thread):
    """Ends as failed every run whose prompt is the workflow's sandbox test, as soon as it
    appears, so that the complete-workflow examples go on to the log analysis."""

    MARK = "Execute the generated setup commands"

    def __init__(self, emu: EmulatorThread, first_id: int) -> None:
        super().__init__(name="fail-test-runs", daemon=True)
        self.emu = emu
        self.next_id = first_id
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.005):
            while True:
                try:
                    info = self.emu.run_info(self.next_id)
                except KeyError:
                    break
                if self.MARK in info["prompt"] and not info["terminal"]:
                    self.emu.finish_run(self.next_id, "failed")
                self.next_id += 1


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    # Runs take 0.2-0.3 s here, ample time to fail the workflow's test runs first.
    with EmulatorThread(
        time_scale=TIME_SCALE, seed=0, failure_rate=0.0, run_duration=(20.0, 30.0)
    ) as server:
        # Read once before any traffic: the id the first new run will get.
        saboteur = FailTestRuns(server, server.emulator.state.next_run_id)
        saboteur.start()
        try:
            yield server
        finally:
            saboteur.done.set()
            saboteur.join()


def example_env(emu: EmulatorThread, out_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEGEN_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONIOENCODING="utf-8",
        CODEGEN_API_BASE_URL=emu.base_url,
        CODEGEN_API_TOKEN=emu.token,
        CODEGEN_ORG_ID=str(emu.org_id),
        CODEGEN_EXAMPLE_TIME_SCALE=str(TIME_SCALE),
        CODEGEN_EXAMPLE_OUTPUT_DIR=str(out_dir),
    )
    return env


def example_files() -> list[str]:
    return sorted(p.name for p in EXAMPLES.glob("*.py") if p.name != HELPER)


def test_every_example_is_checked() -> None:
    assert example_files() == sorted(EXPECTED)
    blocking = [
        name
        for name in example_files()
        if "from codegen_sync import Agent" in (EXAMPLES / name).read_text(encoding="utf-8")
    ]
    assert sorted(blocking) == sorted(FROM_DOCS)
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in [*example_files(), HELPER, "quickstart.ipynb"]:
        assert name in readme, f"examples/README.md does not list {name}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, emu: EmulatorThread, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=example_env(emu, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in EXPECTED[name]:
        assert fragment in proc.stdout, f"{fragment!r} not in the output of {name}:\n{proc.stdout}"
    assert emu.token not in proc.stdout + proc.stderr


def test_examples_write_files_under_the_output_dir(emu: EmulatorThread, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name in ("generate_setup_commands.py", "slack_onboarding.py"):
        subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            env=example_env(emu, out),
            cwd=cwd,
            capture_output=True,
            timeout=120,
            check=True,
        )
    assert (out / ".codegen" / "setup.sh").read_text(encoding="utf-8").startswith("#!/")
    mail = (out / "outbox" / "new.hire@example.com.eml").read_text(encoding="utf-8")
    assert "Subject: Connect Your Slack to Codegen" in mail
    assert "Connect my account: " in mail
    assert list(cwd.iterdir()) == []  # nothing written where the example was started


def test_run_against_emulator_helper(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEGEN_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / HELPER), "--time-scale", "0.01", "current_user.py"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok   current_user.py" in proc.stdout
    assert "1 of 1 examples ran cleanly" in proc.stdout


# --- the blocking examples are the documentation's code ------------------------------------
def _demojibake(text: str) -> str:
    """The page was saved as UTF-8 read as Mac Roman ("‚úì" for "✓"); undo that."""

    def fix(match: re.Match[str]) -> str:
        try:
            return match.group().encode("mac_roman").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return match.group()

    return re.sub(r"[^\x00-\x7f]+", fix, text)


def _normalize(line: str) -> str:
    """A documentation line with the changes the contract allows applied."""
    line = line.replace("from codegen import Agent", "from codegen_sync import Agent")
    line = re.sub(r'Agent\(org_id=(\w+), token="sk-\.\.\."\)', r"Agent(org_id=\1)", line)
    line = line.replace("Agent(org_id=123)", "Agent(org_id=ORG_ID)")
    line = line.replace("org_id=123", "org_id=ORG_ID")
    for name, constant in (
        ("sandbox_id", "SANDBOX_ID"),
        ("user_id", "USER_ID"),
        ("repo_id", "REPO_ID"),
    ):
        line = line.replace(f"{name}=456", f"{name}={constant}")
    line = re.sub(r"time\.sleep\((\d+)\)", r"time.sleep(\1 * SCALE)", line)
    return line.rstrip()


def _doc_blocks() -> list[str]:
    text = _demojibake(DOCS.read_text(encoding="utf-8"))
    return [textwrap.dedent(b) for b in re.findall(r"```python\n(.*?)```", text, re.S)]


def _is_import(line: str) -> bool:
    return bool(re.match(r"(import \w|from [\w.]+ import )", line))


@pytest.mark.parametrize("name", sorted(FROM_DOCS))
def test_blocking_example_is_the_documentation(name: str) -> None:
    blocks = _doc_blocks()
    assert len(blocks) == 13
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    ast.parse(source)
    mine = [line.rstrip() for line in source.splitlines()]
    my_imports = {line for line in mine if _is_import(line)}
    position = 0
    for index in FROM_DOCS[name]:
        for raw in blocks[index].splitlines():
            line = _normalize(raw)
            if not line.strip() or line in PLACEHOLDER_LINES:
                continue
            if _is_import(line):
                assert line in my_imports, f"{name} lacks the documentation's {line!r}"
                continue
            try:
                position = mine.index(line, position) + 1
            except ValueError:
                pytest.fail(
                    f"{name}: documentation line {line!r} (block {index}) is missing "
                    "or out of order"
                )


# --- the notebook ------------------------------------------------------------------------
NOTEBOOK = EXAMPLES / "quickstart.ipynb"


def test_notebook_is_saved_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None
    assert any("from codegen_sync import Agent" in cell.source for cell in code)


@pytest.mark.slow
def test_notebook_runs_against_the_emulator(
    emu: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient

    for key, value in example_env(emu, tmp_path).items():
        monkeypatch.setenv(key, value)  # the kernel inherits this environment
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    text = "\n".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.get("output_type") == "stream"
    )
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.get("output_type") == "error"
    ]
    assert not errors, errors
    assert "Started the emulator" not in text  # it used the one the variables point at
    assert f"API: {emu.base_url}, organization {emu.org_id}" in text
    assert "role ADMIN" in text
    assert "30 users; first page holds 10" in text
    assert "Error found" in text
    assert text.count("agent run ") >= 3
    assert "Connect my account: " in text


@pytest.mark.slow
def test_notebook_on_its_own_emulator_first_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new user's first try: no CODEGEN_* set, so the notebook starts its own emulator
    # with the defaults; its first agent run must complete, not fail.
    from nbclient import NotebookClient

    for name in [k for k in os.environ if k.startswith("CODEGEN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [
        "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        for cell in nb.cells
        if cell.cell_type == "code"
    ]
    assert "Started the emulator" in outputs[0]
    first_run = next(text for text in outputs if "Started agent run" in text)
    assert re.search(r"Agent run \d+: completed\n", first_run), first_run
    assert "failed" not in "".join(outputs)
