"""``codegen-api`` driven as a subprocess against the emulator: every subcommand, ``--json``
output parsed, error exit statuses and messages, and the token never printed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from codegen_async import __version__
from codegen_async.cli import ExitCode
from codegen_async.emulator import EmulatorThread

ROOT = Path(__file__).resolve().parent.parent
TIME_SCALE = 0.01
FAST_POLL = ("--poll-interval", "0.05")  # waits poll often: runs last 0.05-0.3 s here
SUBCOMMANDS = (
    "me",
    "users",
    "user",
    "runs",
    "run",
    "wait",
    "logs",
    "analyze-logs",
    "setup-commands",
    "slack-token",
    "repos",
    "orgs",
    "emulator",
    "demo",
)


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=TIME_SCALE, seed=0, failure_rate=0.0) as server:
        yield server


def base_env(**extra: str) -> dict[str, str]:
    """The test process's environment without CODEGEN_*, able to import the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEGEN_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env["COLUMNS"] = "200"  # wide tables: no wrapped cells in the assertions below
    env.update(extra)
    return env


def emu_env(emu: EmulatorThread, **extra: str) -> dict[str, str]:
    settings = {
        "CODEGEN_API_BASE_URL": emu.base_url,
        "CODEGEN_API_TOKEN": emu.token,
        "CODEGEN_ORG_ID": str(emu.org_id),
    }
    return base_env(**{**settings, **extra})


def run_cli(
    *args: str,
    env: Mapping[str, str],
    input: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``python -m codegen_async.cli ARGS``; checks that no API token is ever printed."""
    proc = subprocess.run(
        [sys.executable, "-m", "codegen_async.cli", *args],
        env=dict(env),
        input=input,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    token = env.get("CODEGEN_API_TOKEN")
    secrets = [token] if token else []
    if "--token" in args:
        secrets.append(args[args.index("--token") + 1])
    for secret in secrets:
        assert secret not in proc.stdout, f"token printed on stdout by {args}"
        assert secret not in proc.stderr, f"token printed on stderr by {args}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_all(
    *calls: tuple[str, ...], env: Mapping[str, str]
) -> list[subprocess.CompletedProcess[str]]:
    """Several independent invocations at once (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_cli(*args, env=env), calls))


def ok_json(*args: str, env: Mapping[str, str], input: str | None = None) -> Any:
    proc = run_cli("--json", *args, env=env, input=input)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The failure's single stderr line; stdout stays empty."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("codegen-api: error: ")
    assert proc.stdout == ""
    return lines[0]


# --- basics ---------------------------------------------------------------------------------
def test_version_and_help_list_every_subcommand() -> None:
    version = run_cli("--version", env=base_env())
    assert version.returncode == 0
    assert version.stdout.strip() == f"codegen-api (codegen-async) {__version__}"

    helped = run_cli("--help", env=base_env())
    assert helped.returncode == 0
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{re.escape(name)}\s", helped.stdout, re.M), name
    assert "CODEGEN_API_TOKEN" in helped.stdout


def test_usage_error_exits_2() -> None:
    proc = run_cli("no-such-command", env=base_env())
    assert proc.returncode == ExitCode.USAGE
    assert "invalid choice" in proc.stderr


def test_console_script_entry_point_is_main() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'codegen-api = "codegen_async.cli:main"' in text


# --- users -----------------------------------------------------------------------------------
def test_me_table_and_json(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    me = ok_json("me", env=env)
    assert me["id"] == emu.user_id
    assert me["role"] == "ADMIN"

    table = run_cli("me", env=env)
    assert table.returncode == 0
    assert "Current user" in table.stdout
    assert f"@{me['github_username']}" in table.stdout
    assert "ADMIN" in table.stdout


def test_users_role_filter(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    everyone = ok_json("users", env=env)
    assert len(everyone) >= 25
    assert {u["role"] for u in everyone} == {"ADMIN", "MANAGER", "MEMBER"}

    managers = ok_json("users", "--role", "manager", env=env)  # case-insensitive
    assert managers == [u for u in everyone if u["role"] == "MANAGER"]

    table = run_cli("users", "--role", "MANAGER", env=env)
    assert table.returncode == 0
    assert f"with role MANAGER: {len(managers)}" in table.stdout
    for user in managers:
        assert f"@{user['github_username']}" in table.stdout
    admin_names = [u["github_username"] for u in everyone if u["role"] == "ADMIN"]
    assert not any(f"@{name}" in table.stdout for name in admin_names)


def test_user_by_id(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    user_id = emu.user_id + 1
    user = ok_json("user", str(user_id), env=env)
    assert user["id"] == user_id
    table = run_cli("user", str(user_id), env=env)
    assert table.returncode == 0
    assert f"@{user['github_username']}" in table.stdout


# --- runs ----------------------------------------------------------------------------------
def test_runs_list_limit_and_filters(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    three, slack, mine, every, table, bad = run_all(
        ("--json", "runs", "--limit", "3"),
        ("--json", "runs", "--source-type", "slack"),
        ("--json", "runs", "--user-id", str(emu.user_id), "--limit", "100"),
        ("--json", "runs", "--limit", "100"),
        ("runs", "--limit", "2"),
        ("runs", "--source-type", "fax"),
        env=env,
    )
    runs = json.loads(three.stdout)
    assert len(runs) == 3
    ids = [r["id"] for r in runs]
    assert ids == sorted(ids, reverse=True)

    slack_runs = json.loads(slack.stdout)
    assert slack_runs and all(r["source_type"] == "SLACK" for r in slack_runs)
    assert 0 < len(json.loads(mine.stdout)) < len(json.loads(every.stdout))

    assert table.returncode == 0, table.stderr
    assert "Agent runs of organization" in table.stdout
    assert "newest first" in table.stdout

    assert "--source-type must be one of" in one_error_line(bad, ExitCode.USAGE)


def test_run_then_wait(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    started = ok_json(
        "run",
        "Fix the flaky test",
        "--repo-id",
        "456",
        "--metadata",
        '{"ticket": "ENG-1"}',
        env=env,
    )
    assert started["metadata"]["ticket"] == "ENG-1"
    info = emu.run_info(started["id"])
    assert info["prompt"] == "Fix the flaky test"
    assert info["repo_id"] == 456

    finished = ok_json("wait", str(started["id"]), *FAST_POLL, env=env)
    assert [r["id"] for r in finished] == [started["id"]]
    assert finished[0]["status"] == "completed"
    assert finished[0]["status_raw"] == "COMPLETE"

    # Without --json: a results table on stdout, one line per finished run on stderr.
    shown = run_cli("wait", str(started["id"]), *FAST_POLL, env=env)
    assert shown.returncode == 0
    assert "completed" in shown.stdout
    assert f"agent run {started['id']}: completed" in shown.stderr


def test_run_wait_reads_prompt_from_stdin(emu: EmulatorThread) -> None:
    run = ok_json("run", "-", "--wait", *FAST_POLL, env=emu_env(emu), input="Write the changelog\n")
    assert run["status"] == "completed"
    assert emu.run_info(run["id"])["prompt"].strip() == "Write the changelog"


def test_run_wait_table_shows_result(emu: EmulatorThread) -> None:
    proc = run_cli(
        "run", "Add a README", "--repo-id", "456", "--wait", *FAST_POLL, env=emu_env(emu)
    )
    assert proc.returncode == 0, proc.stderr
    assert "Result" in proc.stdout
    assert "Done: Add a README." in proc.stdout


def test_wait_exit_status_when_a_run_fails(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    good = ok_json("run", "Succeed", env=env)["id"]
    bad = ok_json("run", "Fail", env=env)["id"]
    emu.finish_run(bad, "failed")
    proc = run_cli("--json", "wait", str(good), str(bad), str(good), *FAST_POLL, env=env)
    assert proc.returncode == ExitCode.RUN_NOT_COMPLETED
    runs = json.loads(proc.stdout)
    assert [r["id"] for r in runs] == [good, bad]  # duplicates waited on once, order kept
    assert [r["status"] for r in runs] == ["completed", "failed"]
    assert [r["status_raw"] for r in runs] == ["COMPLETE", "ERROR"]


def test_wait_timeout_exits_5(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    run_id = ok_json("run", "Ask a question", env=env)["id"]
    emu.finish_run(run_id, "paused")  # paused runs never finish on their own
    proc = run_cli("wait", str(run_id), "--timeout", "0.5", env=env)
    line = one_error_line(proc, ExitCode.WAIT_TIMEOUT)
    assert f"agent run {run_id} did not finish within 0.5s" in line
    assert "--timeout" in line


def test_wait_unknown_run_names_it(emu: EmulatorThread) -> None:
    proc = run_cli("wait", "987654", env=emu_env(emu))
    line = one_error_line(proc, ExitCode.API_ERROR)
    assert "agent run 987654" in line and "404" in line


def test_wait_interrupted_exits_130(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    run_id = ok_json("run", "Wait for me", env=env)["id"]
    emu.finish_run(run_id, "paused")
    before = sum(emu.stats()["requests"].values())
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_async.cli", "wait", str(run_id)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        # Interrupt once the wait is polling (the emulator sees its requests).
        deadline = time.monotonic() + 30
        while sum(emu.stats()["requests"].values()) < before + 2:
            assert time.monotonic() < deadline, "the CLI never started polling"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert err.strip() == "codegen-api: error: interrupted"
    assert out == ""


def test_logs(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    run = ok_json("run", "Fix the login page", "--repo-id", "456", "--wait", *FAST_POLL, env=env)
    logs = ok_json("logs", str(run["id"]), env=env)
    assert logs["id"] == run["id"]
    assert logs["logs"] and all(e["agent_run_id"] == run["id"] for e in logs["logs"])
    assert logs["logs"][0]["message_type"] == "USER_MESSAGE"

    page = ok_json("logs", str(run["id"]), "--limit", "2", "--skip", "1", env=env)
    assert page["logs"] == logs["logs"][1:3]

    table = run_cli("logs", str(run["id"]), "--limit", "3", env=env)
    assert table.returncode == 0
    assert f"Logs of agent run {run['id']}" in table.stdout
    assert f"entries 1-3 of {logs['total_logs']}" in table.stdout
    assert "USER_MESSAGE" in table.stdout


# --- sandbox, setup commands, Slack ------------------------------------------------------
def test_analyze_logs(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    started, done, table, no_logs, missing = run_all(
        ("--json", "analyze-logs", "1"),
        ("--json", "analyze-logs", "1", "--wait", *FAST_POLL),
        ("analyze-logs", "1", "--wait", *FAST_POLL),
        ("analyze-logs", "2"),
        ("analyze-logs", "424242"),
        env=env,
    )
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)
    assert first["message"] == "Analysis started for sandbox logs"
    assert isinstance(first["agent_run_id"], int)

    assert done.returncode == 0, done.stderr
    analysis = json.loads(done.stdout)
    assert analysis["status"] == "completed"
    assert "Error found" in analysis["result"]

    assert table.returncode == 0, table.stderr
    assert "Log analysis of sandbox 1" in table.stdout
    assert "Suggested solution" in table.stdout

    assert "400 No logs available for analysis" in one_error_line(no_logs, ExitCode.API_ERROR)
    assert "404" in one_error_line(missing, ExitCode.API_ERROR)


def test_setup_commands(emu: EmulatorThread, tmp_path: Path) -> None:
    env = emu_env(emu)
    target = tmp_path / "out" / "setup.sh"
    started, saved, waited, missing = run_all(
        ("--json", "setup-commands", "456", "--prompt", "Node.js with TypeScript"),
        ("setup-commands", "456", "--output", str(target), *FAST_POLL),  # implies --wait
        ("--json", "setup-commands", "457", "--wait", *FAST_POLL),
        ("setup-commands", "999999"),
        env=env,
    )
    assert started.returncode == 0, started.stderr
    response = json.loads(started.stdout)
    assert response["url"].endswith(str(response["agent_run_id"]))
    assert emu.run_info(response["agent_run_id"])["prompt"] == "Node.js with TypeScript"

    assert saved.returncode == 0, saved.stderr
    script = target.read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash")
    assert "npm ci" in script
    assert "Setup commands for repository 456" in saved.stdout
    assert f"saved to {target}" in saved.stderr

    assert waited.returncode == 0, waited.stderr
    run = json.loads(waited.stdout)
    assert run["status"] == "completed" and "pip install" in run["result"]

    assert "404" in one_error_line(missing, ExitCode.API_ERROR)


def test_slack_token(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    data = ok_json("slack-token", env=env)
    assert data["expires_in_minutes"] == 10
    assert data["connect_message"] == f"Connect my account: {data['token']}"
    assert emu.connect_slack(data["token"])["connected"] is True

    table = run_cli("slack-token", env=env)
    assert table.returncode == 0
    assert "Connect my account: " in table.stdout
    assert "single use" in table.stdout


# --- organizations and repositories ---------------------------------------------------------
def test_repos_and_orgs(emu: EmulatorThread) -> None:
    repos_json, repos_table, orgs_json, orgs_table = run_all(
        ("--json", "repos"), ("repos",), ("--json", "orgs"), ("orgs",), env=emu_env(emu)
    )
    for proc in (repos_json, repos_table, orgs_json, orgs_table):
        assert proc.returncode == 0, proc.stderr
    repos = json.loads(repos_json.stdout)
    assert 456 in {r["id"] for r in repos}
    assert all(r["organization_id"] == emu.org_id for r in repos)
    assert "acme-robotics/web-dashboard" in repos_table.stdout

    orgs = json.loads(orgs_json.stdout)
    assert emu.org_id in {o["id"] for o in orgs}
    assert "Acme Robotics" in orgs_table.stdout


# --- settings and errors ---------------------------------------------------------------------
def test_options_override_the_environment(emu: EmulatorThread) -> None:
    wrong = base_env(
        CODEGEN_API_BASE_URL="http://127.0.0.1:9",
        CODEGEN_API_TOKEN="cg-wrong-token",
        CODEGEN_ORG_ID="424242",
    )
    args = ("--base-url", emu.base_url, "--token", emu.token, "--org-id", str(emu.org_id))
    # Global options work before and after the subcommand.
    assert ok_json(*args, "me", env=wrong)["id"] == emu.user_id
    proc = run_cli("users", *args, "--json", env=wrong)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) >= 25


def test_missing_token_names_the_variable() -> None:
    proc = run_cli("me", env=base_env())
    line = one_error_line(proc, ExitCode.USAGE)
    assert "CODEGEN_API_TOKEN" in line and "--token" in line


def test_missing_or_bad_org_id(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    del env["CODEGEN_ORG_ID"]
    line = one_error_line(run_cli("users", env=env), ExitCode.USAGE)
    assert "CODEGEN_ORG_ID" in line and "--org-id" in line
    env["CODEGEN_ORG_ID"] = "acme"
    line = one_error_line(run_cli("users", env=env), ExitCode.USAGE)
    assert "CODEGEN_ORG_ID must be an integer" in line


def test_other_organization_is_403(emu: EmulatorThread) -> None:
    env = emu_env(emu, CODEGEN_ORG_ID=str(emu.emulator.foreign_org_id))
    for args in (("users",), ("repos",), ("--json", "run", "hello")):
        line = one_error_line(run_cli(*args, env=env), ExitCode.API_ERROR)
        assert "permission denied (403)" in line
        assert f"organization {emu.emulator.foreign_org_id}" in line
        assert "You do not have access to this organization." in line


def test_bad_token_is_401_and_not_echoed(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    secret = "cg-not-a-real-token-123456"
    line = one_error_line(run_cli("--token", secret, "me", env=env), ExitCode.API_ERROR)
    assert "authentication failed (401)" in line and "CODEGEN_API_TOKEN" in line


def test_rate_limited_says_when_to_retry(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    emu.inject_fault("get_current_user", "status", status=429, retry_after=30)
    try:
        proc = run_cli("--max-retries", "0", "me", env=env)
    finally:
        emu.clear_faults()
    line = one_error_line(proc, ExitCode.RATE_LIMITED)
    assert "rate limited (429)" in line
    assert ".;" not in line  # the server's sentence runs on into the hint
    assert "GET /v1/users/me" in line
    assert re.search(r"retry in 30\.0s \(after \d\d:\d\d:\d\d\)", line), line

    # Without Retry-After, the message names the documented quota instead.
    emu.inject_fault("analyze_sandbox_logs", "status", status=429)
    try:
        proc = run_cli("--json", "--max-retries", "0", "analyze-logs", "1", env=env)
    finally:
        emu.clear_faults()
    line = one_error_line(proc, ExitCode.RATE_LIMITED)
    assert "retry after the quota window" in line
    assert "5 requests per 60s" in line


def test_retried_429_then_success(emu: EmulatorThread) -> None:
    emu.inject_fault("get_current_user", "status", status=429, retry_after=0.1)
    try:
        me = ok_json("me", env=emu_env(emu))
    finally:
        emu.clear_faults()
    assert me["id"] == emu.user_id


def test_unreachable_api(emu: EmulatorThread) -> None:
    env = emu_env(emu, CODEGEN_API_BASE_URL="http://127.0.0.1:9")
    line = one_error_line(run_cli("--max-retries", "0", "me", env=env), ExitCode.API_ERROR)
    assert "cannot reach the API" in line and "127.0.0.1:9" in line


def test_plain_http_to_a_remote_host_is_refused(emu: EmulatorThread) -> None:
    env = emu_env(emu, CODEGEN_API_BASE_URL="http://api.example.com")
    line = one_error_line(run_cli("me", env=env), ExitCode.USAGE)
    assert "plain http" in line


def test_closed_stdout_exits_quietly(emu: EmulatorThread) -> None:
    # Like ``codegen-api users | head -0``: the reader is gone before anything is written.
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_async.cli", "users"],
        env=emu_env(emu),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == ExitCode.BROKEN_PIPE
    assert err == ""


def test_bad_metadata_is_a_usage_error(emu: EmulatorThread) -> None:
    proc = run_cli("run", "x", "--metadata", "[1, 2]", env=emu_env(emu))
    assert "--metadata must be a JSON object" in one_error_line(proc, ExitCode.USAGE)


# --- emulator and demo -----------------------------------------------------------------------
def test_emulator_subcommand_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "codegen_async.cli", "emulator", "--time-scale", "0.01", "--quiet"],
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert set(ready) == {"base_url", "token", "org_id"}
        env = base_env(
            CODEGEN_API_BASE_URL=ready["base_url"],
            CODEGEN_API_TOKEN=ready["token"],
            CODEGEN_ORG_ID=str(ready["org_id"]),
        )
        assert ok_json("me", env=env)["role"] == "ADMIN"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0


def test_emulator_subcommand_help_is_the_emulators() -> None:
    proc = run_cli("emulator", "--help", env=base_env())
    assert proc.returncode == 0
    for option in ("--time-scale", "--rate-limit", "--seed", "--port", "--host"):
        assert option in proc.stdout
    bad = run_cli("emulator", "--time-scale", "-1", env=base_env())
    assert bad.returncode == ExitCode.USAGE


def test_demo_honours_the_global_rate_limit_scale() -> None:
    """It used to keep the emulator's scale whatever --rate-limit-scale said (and said nothing).

    A client 500 times looser than the server fans out six calls against a quota of five:
    the server answers 429, the client waits it out and retries, and the workflow succeeds.
    """
    as_json, shown = run_all(
        ("--json", "--rate-limit-scale", "0.0001", "demo", "--time-scale", "0.05"),
        ("demo", "--time-scale", "0.05", "--rate-limit-scale", "0.0001"),
        env=base_env(CODEGEN_RATE_LIMIT_SCALE="7"),  # not read: the option wins, else the demo's
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["success"] is True
    assert report["emulator"]["time_scale"] == 0.05
    assert report["client"]["rate_limit_scale"] == 0.0001
    assert report["client"]["rate_limited"] >= 1 and report["client"]["retries"] >= 1
    assert report["emulator_stats"]["rate_limited"] == report["client"]["rate_limited"]
    assert shown.returncode == 0, shown.stderr
    assert "quota windows × 0.0001" in shown.stdout
    assert "client quota scale 0.0001" in shown.stdout


def test_demo_runs_the_whole_workflow() -> None:
    # No credentials at all; both renderings at once.
    as_json, shown = run_all(
        ("--json", "demo", "--time-scale", "0.01"), ("demo", "--time-scale", "0.01"), env=base_env()
    )
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["success"] is True
    steps = {step["step"]: step for step in report["steps"]}
    assert steps["setup commands"]["status"] == "completed"
    assert steps["setup commands"]["result"].startswith("#!/usr/bin/env bash")
    assert steps["test run"]["status"] == "failed"
    assert report["sandbox_id"] == 1
    assert "Error found" in steps["log analysis"]["result"]
    assert steps["fix run"]["status"] == "completed"
    fanout = [s for s in report["steps"] if s["step"].startswith("fan-out")]
    assert len(fanout) == report["fanout"]["calls"] == 6
    assert all(s["status"] == "completed" for s in fanout)
    ids = [s["agent_run_id"] for s in report["steps"]]
    assert len(set(ids)) == len(ids) == 10
    # Six calls at once against a quota of five: the limiter must have held one back,
    # and the server never had to say 429.
    assert report["fanout"]["rate_limit_wait_seconds"] > 0
    client = report["client"]
    assert client["rate_limit_wait_seconds"] >= report["fanout"]["rate_limit_wait_seconds"]
    assert client["rate_limited"] == 0
    assert client["rate_limit_scale"] == 0.01  # the emulator's own, when not told otherwise
    assert report["emulator_stats"]["rate_limited"] == 0
    assert report["emulator_stats"]["runs_created"] == 10

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    for fragment in (
        "codegen-api demo",
        "1. Current user",
        "Authenticated as:",
        "2. Setup commands for",
        "#!/usr/bin/env bash",
        "3. Test run",
        "sandbox_id from the run's metadata: 1",
        "4. Log analysis of sandbox 1",
        "Suggested solution",
        "5. Fix run",
        "Issues fixed successfully",
        "6. Fan-out",
        "held calls back",
        "Held back by the rate limiter",
        "workflow succeeded",
    ):
        assert fragment in out, fragment
    assert out.index("1. Current user") < out.index("3. Test run") < out.index("5. Fix run")
