"""``codegen-api`` at its edges: hostile server text, arguments the SDK refuses, an output
file that cannot be written, the statuses of ``--json``, and the options a new user looks
for (``--allow-insecure-http``, ``--rate-limit-scale``).

Subprocess tests share ``tests/test_cli.py``'s helpers; the rest call the CLI's pieces in
this process.
"""

from __future__ import annotations

import argparse
import io
import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codegen_async import RateLimits
from codegen_async._polling._waits import check_wait_args
from codegen_async._validation import check_id
from codegen_async.cli import ExitCode, main
from codegen_async.cli._app import build_parser
from codegen_async.cli._commands import Context
from codegen_async.cli._errors import describe_error, is_argument_error
from codegen_async.cli._output import (
    Output,
    kv_table,
    literal,
    make_table,
    status_text,
    to_json,
)
from codegen_async.cli._progress import RunBoard
from codegen_async.emulator import EmulatorThread
from codegen_async.models import AgentRun, RunStatus

from .test_cli import FAST_POLL, TIME_SCALE, base_env, emu_env, ok_json, one_error_line, run_cli

# Markup rich would act on, and terminal controls: clear screen, retitle, a C1 CSI, a
# right-to-left override.
HOSTILE = "\x1b[2J\x1b]0;owned\x07[/etc/app.conf] [/] [bold]B[/bold] \x9b31m\u202eZ"
SHOWN = "\\x1b[2J\\x1b]0;owned\\x07[/etc/app.conf] [/] [bold]B[/bold] \\x9b31m\\u202eZ"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=TIME_SCALE, seed=1) as server:
        yield server


def _no_controls(text: str) -> None:
    for char in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert char not in text, repr(text)


# --- 14#3: server text is data, never markup or terminal control ----------------------------
def test_literal_shows_controls_as_escapes() -> None:
    assert literal(HOSTILE) == SHOWN
    assert literal("two\tcolumns\nand lines") == "two\tcolumns\nand lines"
    assert literal("\x00\x7f\x85\u2066") == "\\x00\\x7f\\x85\\u2066"


def test_tables_print_server_text_as_written() -> None:
    out = io.StringIO()
    output = Output(json_mode=False, stdout=out)
    output.out.width = 200
    output.out.print(make_table(f"title {HOSTILE}", ("A", "B"), [(HOSTILE, status_text(HOSTILE))]))
    output.out.print(kv_table({"Summary": HOSTILE, "[b]key": "[link=https://x.test]L[/link]"}))
    text = out.getvalue()
    _no_controls(text)
    assert text.count(SHOWN) == 4  # title, two cells, one value
    assert "[b]key" in text and "[link=https://x.test]L[/link]" in text


def test_live_board_shows_server_text_literally() -> None:
    from rich.console import Console

    board = RunBoard([1, 2], title="Waiting")
    board.update(AgentRun(id=1, organization_id=1, status=RunStatus(HOSTILE), result=HOSTILE))
    board.update(AgentRun(id=2, organization_id=1, status=RunStatus("COMPLETE"), summary=HOSTILE))
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=200).print(board)  # styles are its own ESC
    text = out.getvalue()
    for sequence in ("\x1b[2J", "\x1b]0;", "\x07", "\x9b", "\u202e"):
        assert sequence not in text
    assert "[/etc/app.conf]" in text


def test_error_line_is_one_literal_line() -> None:
    err = io.StringIO()
    Output(json_mode=False, stderr=err).error_line(f"500 {HOSTILE}\nsecond line")
    assert err.getvalue() == f"codegen-api: error: 500 {SHOWN}\\nsecond line\n"


def test_runs_wait_and_run_wait_print_markup_literally(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    # The emulator's summary of a completed run is its prompt's first line.
    proc = run_cli("run", HOSTILE, "--wait", *FAST_POLL, env=env)
    assert proc.returncode == 0, proc.stderr
    _no_controls(proc.stdout + proc.stderr)
    assert SHOWN in proc.stdout
    run_id = max(r["id"] for r in ok_json("runs", "--limit", "5", env=env))

    for args in (("runs", "--limit", "5"), ("wait", str(run_id), *FAST_POLL)):
        shown = run_cli(*args, env=env)
        assert shown.returncode == 0, (args, shown.stderr)
        _no_controls(shown.stdout + shown.stderr)
        assert "[/etc/app.conf] [/]" in shown.stdout, (args, shown.stdout)


# --- 17#2: one spelling of a status --------------------------------------------------------
def test_json_status_is_the_documentations_word(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    good = ok_json("run", "Succeed", env=env)
    bad = ok_json("run", "Fail", env=env)["id"]
    assert good["status"] == "running" and good["status_raw"] == "ACTIVE"
    emu.finish_run(bad, "failed")
    proc = run_cli("--json", "wait", str(good["id"]), str(bad), *FAST_POLL, env=env)
    assert proc.returncode == ExitCode.RUN_NOT_COMPLETED
    runs = json.loads(proc.stdout)
    # What `jq '.[] | select(.status == "failed")'` selects:
    assert [r["id"] for r in runs if r["status"] == "failed"] == [bad]
    assert [r["status_raw"] for r in runs] == ["COMPLETE", "ERROR"]
    listed = ok_json("runs", "--limit", "5", env=env)
    words = {"pending", "running", "paused", "completed", "failed", "cancelled"}
    assert {r["status"] for r in listed} <= words
    started = ok_json("analyze-logs", "1", env=env)
    assert (started["status"], started["status_raw"]) == ("running", "ACTIVE")


def test_to_json_keeps_other_fields_and_unknown_statuses() -> None:
    failed = to_json(AgentRun(id=1, organization_id=2, status=RunStatus("ERROR")))
    assert (failed["id"], failed["status"], failed["status_raw"]) == (1, "failed", "ERROR")
    new = AgentRun(id=1, organization_id=2, status=RunStatus("SOMETHING_NEW"))
    assert [(d["status"], d["status_raw"]) for d in to_json([new, new])] == [
        ("SOMETHING_NEW", "SOMETHING_NEW")
    ] * 2
    assert to_json(AgentRun(id=1, organization_id=2))["status"] is None


# --- 14#14: arguments the SDK refuses are usage errors -------------------------------------
def test_nan_in_metadata_is_a_usage_error(emu: EmulatorThread) -> None:
    for text in ('{"a": NaN}', '{"a": [Infinity]}', '{"a": -Infinity}'):
        proc = run_cli("run", "x", "--metadata", text, env=emu_env(emu))
        line = one_error_line(proc, ExitCode.USAGE)
        assert "--metadata is not valid JSON" in line and "is not a JSON number" in line


def _run_stdin(env: dict[str, str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "codegen_async.cli", "run", "-"],
        env=env,
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_bad_prompt_on_stdin_is_a_usage_error(emu: EmulatorThread) -> None:
    env = emu_env(emu)
    created = emu.stats()["runs_created"]
    nul = _run_stdin(env, b"Fix\x00it\n")
    assert nul.returncode == ExitCode.USAGE, nul.stderr
    assert b"must not contain NUL" in nul.stderr and b"Traceback" not in nul.stderr
    latin1 = _run_stdin(env, "Café\n".encode("latin-1"))
    assert latin1.returncode == ExitCode.USAGE, latin1.stderr
    assert b"not UTF-8" in latin1.stderr and b"Traceback" not in latin1.stderr
    assert emu.stats()["runs_created"] == created
    fine = _run_stdin(env, "Café ☕\n".encode())
    assert fine.returncode == 0, fine.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0"])
def test_non_finite_request_timeout_is_a_usage_error(value: str) -> None:
    proc = run_cli(f"--request-timeout={value}", "me", env=base_env())
    assert proc.returncode == ExitCode.USAGE
    assert "positive finite number" in proc.stderr


def test_any_sdk_argument_check_maps_to_usage() -> None:
    with pytest.raises(ValueError) as caught:
        check_id("repo_id", -1)
    assert is_argument_error(caught.value)
    assert describe_error(caught.value) == (ExitCode.USAGE, str(caught.value))
    # Checks inside a package count too (the waits refuse poll_interval=inf).
    with pytest.raises(ValueError) as caught:
        check_wait_args(None, float("inf"))
    assert describe_error(caught.value)[0] == ExitCode.USAGE
    with pytest.raises(TypeError):  # a ValueError of the CLI's own code is still a bug
        describe_error(ValueError("mine"))


# --- 14#14 and 17#7: setup-commands --output --------------------------------------------------
def test_output_is_executable(emu: EmulatorThread, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "setup.sh"
    proc = run_cli("setup-commands", "456", "--output", str(target), *FAST_POLL, env=emu_env(emu))
    assert proc.returncode == 0, proc.stderr
    mode = target.stat().st_mode
    assert mode & stat.S_IXUSR and target.read_text(encoding="utf-8").startswith("#!")


def test_unwritable_output_is_refused_before_the_run(emu: EmulatorThread, tmp_path: Path) -> None:
    env = emu_env(emu)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x", encoding="utf-8")
    created = emu.stats()["runs_created"]
    for target in (tmp_path, a_file / "setup.sh"):
        proc = run_cli("setup-commands", "456", "--output", str(target), env=env)
        assert "--output" in one_error_line(proc, ExitCode.USAGE)
    assert emu.stats()["runs_created"] == created


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_output_folder_that_cannot_be_made_is_refused_before_the_run(
    emu: EmulatorThread,
) -> None:
    """/proc takes no new folder, even for root (whom os.access lets through)."""
    created = emu.stats()["runs_created"]
    target = "/proc/codegen-no-such-folder/setup.sh"
    proc = run_cli("setup-commands", "456", "--output", target, "--wait", env=emu_env(emu))
    assert "--output" in one_error_line(proc, ExitCode.USAGE)
    assert emu.stats()["runs_created"] == created
    assert not Path(target).parent.exists()


def test_write_failure_after_the_run_keeps_the_result(
    emu: EmulatorThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(path: Path, text: str) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("codegen_async.cli._commands._write_script", refuse)
    for name, value in emu.client_env().items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "setup.sh"
    code = main(["--json", "setup-commands", "456", "--output", str(target), *FAST_POLL])
    out, err = capsys.readouterr()
    assert code == ExitCode.OUTPUT_ERROR
    run = json.loads(out)
    assert run["status"] == "completed" and run["result"].startswith("#!")
    assert err.count("\n") == 1 and err.startswith("codegen-api: error: cannot write")
    assert "Permission denied" in err and f"agent run {run['id']}" in err
    assert not target.exists()


# --- 17#7 and 17#1: options a new user looks for ---------------------------------------------
def _context(*argv: str) -> Context:
    args: argparse.Namespace = build_parser().parse_args([*argv, "me"])
    return Context(args, Output(json_mode=True))


async def test_insecure_http_message_names_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_API_TOKEN", "cg-token-1234")
    monkeypatch.setenv("CODEGEN_API_BASE_URL", "http://api.example.test")
    with pytest.raises(Exception) as caught:
        _context().agent()
    code, message = describe_error(caught.value)
    assert code == ExitCode.USAGE
    assert "--allow-insecure-http" in message and "allow_insecure_http=True" not in message
    async with _context("--allow-insecure-http").agent() as agent:
        assert agent.base_url == "http://api.example.test"


async def test_rate_limit_scale_option_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_API_TOKEN", "cg-token-1234")
    scaled = RateLimits.documented(scale=0.01).quotas["generate_setup_commands"]
    async with _context("--rate-limit-scale", "0.01").agent() as agent:
        assert agent.rate_limits.quotas["generate_setup_commands"] == scaled
    monkeypatch.setenv("CODEGEN_RATE_LIMIT_SCALE", "0.01")
    async with _context().agent() as agent:
        assert agent.rate_limits.quotas["generate_setup_commands"] == scaled
    assert run_cli("--rate-limit-scale", "inf", "me", env=base_env()).returncode == ExitCode.USAGE


def test_output_written_even_where_chmod_is_refused(
    emu: EmulatorThread,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A group-writable file owned by someone else: writing works, chmod raises EPERM.
    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(Path, "chmod", refuse)
    for name, value in emu.client_env().items():
        monkeypatch.setenv(name, value)
    target = tmp_path / "setup.sh"
    code = main(["--json", "setup-commands", "456", "--output", str(target), *FAST_POLL])
    assert code == ExitCode.OK, capsys.readouterr().err
    assert target.read_text(encoding="utf-8").startswith("#!")
