"""Nothing a benchmark run starts outlives it, however the run is stopped.

Once, pytest-timeout stopped the benchmark smoke test and the scenario's processes (its own
session) and the emulators they had started ran on for two hours. Here the harness runs the
``fanout`` scenario (a fresh emulator process per measurement) and is stopped every
way a run is stopped: SIGKILL (what ``subprocess.run(timeout=...)`` and so pytest-timeout's
exception do to it), SIGTERM, SIGHUP, SIGINT, and its own time limit. Each time, every
process it had started must be gone within a generous bound. The mechanisms
(``benchmarks._procs``) are also tested alone, with a grandchild in a session of its own,
which a process-group kill cannot reach.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

psutil = pytest.importorskip("psutil")

from benchmarks._procs import stop_tree  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
GONE_WITHIN = 30.0  # seconds; the cleanup takes about 5 (its SIGTERM grace)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX sessions and signals")


@pytest.fixture
def survivors() -> Iterator[list[Any]]:
    """Processes a test saw; any still alive at the end is killed (and the test failed)."""
    seen: list[Any] = []
    yield seen
    for _ in range(3):  # a parent killed after its child may have started another
        for proc in list(seen):
            seen += [p for p in _tree(proc.pid) if p not in seen]
            with contextlib.suppress(psutil.Error):
                proc.kill()


def _env() -> dict[str, str]:
    existing = os.environ.get("PYTHONPATH")
    path = str(REPO_ROOT) if not existing else f"{REPO_ROOT}{os.pathsep}{existing}"
    return {**os.environ, "PYTHONPATH": path}


def _harness(out: Path, *args: str) -> subprocess.Popen[bytes]:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "harness.err").open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "benchmarks", "--only", "fanout", "--out", str(out), *args],
            cwd=REPO_ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.05)


def _tree(pid: int) -> list[Any]:
    try:
        found: list[Any] = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return found


def _cmdline(proc: Any) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return f"pid {proc.pid} (gone)"


def _serving(harness: subprocess.Popen[bytes], seen: list[Any]) -> bool:
    """Record the harness's descendants; true once an emulator of the scenario is up."""
    assert harness.poll() is None, "the harness ended before its scenario started a server"
    seen += [p for p in _tree(harness.pid) if p not in seen]
    return any("--serve" in _cmdline(p) for p in seen)


def _assert_all_gone(procs: list[Any]) -> None:
    _, alive = psutil.wait_procs(procs, timeout=GONE_WITHIN)
    assert not alive, [_cmdline(p) for p in alive]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name
)
def test_stopping_the_harness_stops_everything_it_started(
    tmp_path: Path, sig: signal.Signals, survivors: list[Any]
) -> None:
    # Not --quick: the full scenario runs for minutes, so that what is gone within the bound
    # was stopped, not done.
    harness = _harness(tmp_path)
    try:
        _wait_for("the fanout scenario's emulator runs", lambda: _serving(harness, survivors))
        assert len(survivors) >= 2  # the scenario and its emulator (the grandchild)
        harness.send_signal(sig)
        harness.wait(GONE_WITHIN)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    _assert_all_gone(survivors)


@pytest.mark.timeout(300)
def test_a_scenario_over_its_time_limit_leaves_its_stacks_and_no_process(
    tmp_path: Path, survivors: list[Any]
) -> None:
    harness = _harness(tmp_path, "--quick", "--timeout", "4")
    try:
        while harness.poll() is None:  # remember every descendant it had
            survivors += [p for p in _tree(harness.pid) if p not in survivors]
            time.sleep(0.05)
    finally:
        if harness.poll() is None:
            harness.kill()
        harness.wait()
    assert harness.returncode == 1
    log = (tmp_path / "logs" / "fanout.log").read_text()
    assert "[harness] timed out after 4s" in log
    # faulthandler's dump: where the scenario was when it was stopped.
    assert "most recent call first" in log, log[-2000:]
    assert "_harness.py" in log
    _assert_all_gone(survivors)


# --- the mechanisms alone ------------------------------------------------------------------

# A process with a grandchild in a session of its own (out of reach of a group kill).
_PARENT = """
import subprocess, sys, time
from benchmarks._procs import die_with_tree, on_parent_exit
sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
grandchild = subprocess.Popen(sleeper, start_new_session=True)
if "--lifeline" in sys.argv:
    on_parent_exit(lambda: die_with_tree("test: parent gone"))
print(grandchild.pid, flush=True)
time.sleep(600)
"""


def _start(script: str, *args: str) -> tuple[subprocess.Popen[bytes], Any]:
    """``script`` in a session of its own; its stdin a pipe; the process whose pid it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the test process did not start"
    return proc, psutil.Process(int(line))


@pytest.mark.timeout(120)
def test_stop_tree_reaches_a_grandchild_in_another_session(survivors: list[Any]) -> None:
    proc, grandchild = _start(_PARENT)
    survivors += [psutil.Process(proc.pid), grandchild]
    stop_tree(proc, grace=2.0)
    assert proc.returncode is not None
    _assert_all_gone([grandchild])
    for stream in (proc.stdin, proc.stdout):
        assert stream is not None
        stream.close()


@pytest.mark.timeout(120)
def test_a_closed_lifeline_kills_the_tree_even_in_another_session(
    survivors: list[Any],
) -> None:
    proc, grandchild = _start(_PARENT, "--lifeline")
    survivors += [psutil.Process(proc.pid), grandchild]
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()  # as when the harness dies: the kernel closes its end
    assert proc.wait(GONE_WITHIN) == -signal.SIGKILL
    _assert_all_gone([grandchild])
    proc.stdout.close()


_SERVER_PARENT = """
import sys, time
from benchmarks._servers import serve_get_run
with serve_get_run() as server:
    print(server.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.timeout(120)
def test_a_benchmark_server_stops_when_its_parent_is_killed(survivors: list[Any]) -> None:
    """A scenario run by hand and SIGKILLed: the server it started stops by itself."""
    proc, server = _start(_SERVER_PARENT)
    survivors += [server]
    proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        assert stream is not None
        stream.close()
    _assert_all_gone([server])


_READER = """
import subprocess, sys
from benchmarks._procs import on_parent_exit
on_parent_exit(lambda: None)
reader = [sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"]
print(subprocess.run(reader, capture_output=True, text=True, timeout=30).stdout, flush=True)
"""


@pytest.mark.timeout(120)
def test_a_lifeline_is_not_handed_down() -> None:
    """What the watching process starts reads an empty input, not its open lifeline."""
    with subprocess.Popen(
        [sys.executable, "-c", _READER],
        cwd=REPO_ROOT,
        env=_env(),
        stdin=subprocess.PIPE,  # held open until the reader is done
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        read = proc.stdout.readline()
        proc.stdin.close()
        assert proc.wait(60) == 0
    assert read.strip() == "0"  # it read an empty input, at once
