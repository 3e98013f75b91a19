"""``python -m codegen_async.emulator``: the first line, requests, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from codegen_async.emulator import main

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(*args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "codegen_async.emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def get(url: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serves_then_stops_cleanly(processes: list[subprocess.Popen[str]], sig: int) -> None:
    proc = start("--time-scale", "0.01", "--seed", "5", "--rate-limit", "sliding")
    processes.append(proc)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert set(first) == {"base_url", "token", "org_id"}
    assert first["base_url"].startswith("http://127.0.0.1:")
    me = get(f"{first['base_url']}/v1/users/me", first["token"])
    assert me["role"] == "ADMIN"
    stats = get(f"{first['base_url']}/_emulator/stats", "")
    assert stats["config"] == {  # type: ignore[comparison-overlap]
        "time_scale": 0.01,
        "rate_limit": "sliding",
        "status_style": "api",
        "run_duration": [5.0, 30.0],
        "failure_rate": 0.0,  # runs succeed unless asked
        "max_runs": None,
        "seed": 5,
    }
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the first line
    assert "Traceback" not in err
    assert first["token"] not in err


def test_options(processes: list[subprocess.Popen[str]]) -> None:
    proc = start(
        "--token", "sk-cli", "--org-id", "40", "--status-style", "docs", "--quiet",
        "--run-duration", "1", "2", "--failure-rate", "0", "--max-runs", "3",
    )  # fmt: skip
    processes.append(proc)
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())
    assert (first["token"], first["org_id"]) == ("sk-cli", 40)
    orgs = get(f"{first['base_url']}/v1/organizations", "sk-cli")
    assert [o["id"] for o in orgs["items"]] == [40, 41]  # type: ignore[union-attr,index]
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and err == ""


def test_bad_arguments_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--time-scale", "0"])
    assert info.value.code == 2
    assert "--time-scale" in capsys.readouterr().err
    assert main(["--port", "-5"]) == 2
    assert "error:" in capsys.readouterr().err
