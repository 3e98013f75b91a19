"""The shared loop thread's life: Ctrl-C during a call, os.fork(), and interpreter exit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from codegen_async import ENDPOINTS
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent
from codegen_sync._portal import THREAD_NAME, get_portal

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0) as emulator:
        yield emulator


@pytest.fixture
def agent(emu: EmulatorThread) -> Iterator[Agent]:
    emu.clear_faults()
    with Agent(**emu.client_kwargs()) as client:
        yield client
    emu.clear_faults()


def route(operation: str) -> str:
    endpoint = ENDPOINTS[operation]
    return f"{endpoint.method} {endpoint.path}"


def client_ports(port: int) -> set[int]:
    """Local ports of this process's connections to the emulator (client side)."""
    return {
        c.laddr.port
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port
    }


def emu_port(emu: EmulatorThread) -> int:
    return int(emu.base_url.rsplit(":", 1)[1])


async def _other_tasks() -> list[str]:
    current = asyncio.current_task()
    return [repr(t) for t in asyncio.all_tasks() if t is not current]


# --- Ctrl-C ----------------------------------------------------------------------------------
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_ctrl_c_cancels_the_call_and_leaves_no_task(agent: Agent, emu: EmulatorThread) -> None:
    run = agent.run("Take a long time")
    assert get_portal().call(_other_tasks()) == []
    emu.inject_fault("get_run", "hang", delay=30)
    emu.reset_stats()
    sent = threading.Event()

    def interrupt() -> None:
        # Wait until the request is at the server (hanging), then press Ctrl-C.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if emu.stats()["requests"][route("get_run")] >= 1:
                time.sleep(0.05)
                sent.set()
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    timer = threading.Thread(target=interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            agent.get_run(run.id)
    finally:
        timer.join()
    assert sent.is_set()
    # The coroutine was cancelled on the loop and has finished: nothing is left running.
    assert get_portal().call(_other_tasks()) == []
    assert agent.stats.requests >= 1
    # The client still works (the fault was used up by the interrupted request).
    assert agent.get_run(run.id).id == run.id


# --- fork ------------------------------------------------------------------------------------
def _run_child(child: Any, timeout: float = 60.0) -> dict[str, Any]:
    """Fork; run ``child()`` in the child (its JSON result goes through a pipe)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a multi-threaded process may deadlock; that
        # is the situation under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.close(read_end)
            payload = json.dumps(child()).encode()
            os.write(write_end, payload)
            code = 0
        except BaseException as exc:
            os.write(write_end, json.dumps({"error": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    with os.fdopen(read_end, "rb") as pipe:
        result: dict[str, Any] = json.loads(pipe.read() or b"{}")
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_a_fresh_loop_and_no_inherited_socket(
    agent: Agent, emu: EmulatorThread
) -> None:
    port = emu_port(emu)
    user = agent.get_current_user()  # the parent's loop thread and a keep-alive connection
    parent_portal = get_portal()
    parent_ports = client_ports(port)
    assert parent_ports

    def child() -> dict[str, Any]:
        inherited = sorted(client_ports(port))  # dropped by the at-fork hook
        me = agent.get_current_user()  # the parent's client object, used in the child
        own = Agent(**emu.client_kwargs())
        users = [u.id for u in own.iter_users(page_size=10)]
        threads = [t for t in threading.enumerate() if t.name == THREAD_NAME]
        ports = sorted(client_ports(port))
        portal = get_portal()
        report = {
            "inherited": inherited,
            "user": me.id,
            "users": len(users),
            "loop_threads": len(threads),
            "new_portal": portal is not parent_portal,
            "portal_pid_is_child": portal.pid == os.getpid() != parent_portal.pid,
            "ports": ports,
        }
        agent.close()
        own.close()
        report["after_close"] = sorted(client_ports(port))
        from codegen_sync._portal import shutdown

        shutdown()
        report["threads_after_shutdown"] = [t.name for t in threading.enumerate()]
        return report

    result = _run_child(child)
    assert result["inherited"] == []
    assert result["user"] == user.id
    assert result["users"] >= 25
    assert result["loop_threads"] == 1
    assert result["new_portal"] is True
    assert result["portal_pid_is_child"] is True
    assert result["ports"]
    assert not set(result["ports"]) & parent_ports
    assert result["after_close"] == []
    assert THREAD_NAME not in result["threads_after_shutdown"]
    # The parent was not disturbed: same loop thread, same connection, still working.
    assert agent.get_current_user().id == user.id
    assert get_portal() is parent_portal
    assert parent_portal.thread.is_alive()
    assert client_ports(port) == parent_ports


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_before_first_use(emu: EmulatorThread) -> None:
    fresh = Agent(**emu.client_kwargs())  # never used in the parent

    def child() -> dict[str, Any]:
        with fresh:
            return {"user": fresh.get_current_user().id}

    try:
        assert _run_child(child) == {"user": emu.user_id}
    finally:
        fresh.close()


# --- interpreter exit ------------------------------------------------------------------------
EXIT_SCRIPT = """
    import atexit, json, os, sys, threading

    import psutil

    PORT = int(os.environ["CODEGEN_API_BASE_URL"].rsplit(":", 1)[1])
    report = {}

    def check():
        # Registered before codegen_sync is imported, so it runs after codegen_sync's own
        # exit handler (atexit is last-in, first-out).
        report["loop_threads"] = [
            t.name for t in threading.enumerate() if t.name == "codegen_sync-loop"
        ]
        report["connections"] = len(
            [c for c in psutil.Process().net_connections("tcp") if c.raddr and c.raddr.port == PORT]
        )
        try:
            agent.get_current_user()
        except RuntimeError as exc:
            report["late_call"] = str(exc)
        agent.close()  # a no-op now
        print(json.dumps(report), flush=True)

    atexit.register(check)

    from codegen_sync import Agent

    agent = Agent()  # from CODEGEN_* variables; deliberately never closed
    agent.get_current_user()
    users = agent.iter_users(page_size=1)
    next(users)  # an async generator left suspended
    run = agent.run("Leave me running")
    states = agent.watch_run(run.id)
    next(states)  # a poller left running
    second = Agent()
    second.get_users(limit=1)  # a second open client
    def work():
        with Agent() as own:
            own.get_current_user()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join()
    report["before_exit"] = {
        "loop_threads": sum(t.name == "codegen_sync-loop" for t in threading.enumerate()),
    }
"""


def test_interpreter_exit_stops_the_loop_and_closes_everything(
    emu: EmulatorThread, tmp_path: Path
) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(EXIT_SCRIPT), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "CODEGEN_API_TOKEN": emu.token,
        "CODEGEN_ORG_ID": str(emu.org_id),
        "CODEGEN_API_BASE_URL": emu.base_url,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "always::ResourceWarning",
            "-W",
            "always::RuntimeWarning",
            str(script),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no "Unclosed", "Task was destroyed", "never awaited", ...
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["before_exit"] == {"loop_threads": 1}
    assert report["loop_threads"] == []
    assert report["connections"] == 0
    assert "shut down" in report["late_call"]


def test_repr_of_a_client_whose_constructor_failed() -> None:
    """Regression: repr() of a half-built Agent raised AttributeError."""
    from codegen_sync import Agent, ConfigurationError

    agent = Agent.__new__(Agent)
    assert repr(agent) == "Agent(<not configured>)"
    with pytest.raises(ConfigurationError):
        Agent(org_id=1)  # no token anywhere


def test_kept_constructor_arguments_hide_the_token() -> None:
    """Regression: the raw token sat in the state kept for rebuilding after fork."""
    from codegen_sync import Agent

    secret = "sk-kept-in-state-0123456789"
    for agent in (Agent(secret, 1, base_url="http://127.0.0.1:9"),
                  Agent(token=secret, org_id=1, base_url="http://127.0.0.1:9")):  # fmt: skip
        state = agent._state
        shown = " ".join(repr(getattr(state, name)) for name in type(state).__slots__)
        assert secret not in shown
        assert repr(state.arguments) == "<arguments hidden>"
        agent.close()
