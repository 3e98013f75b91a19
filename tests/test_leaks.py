"""Nothing is left behind: no task, session, socket or thread once a client is closed, and
no blocking call inside the event loop on the client's paths.

The suite runs with ``-W error::ResourceWarning`` (also set in ``pyproject.toml``), so an
unclosed aiohttp session or connector fails the test that left it. The checks here go
further: they look at the loop's tasks, the process's TCP connections (psutil), live
``ClientSession`` objects and threads, after normal use, after faults, after cancellation,
and for the blocking client in a fresh interpreter. ``blockbuster`` turns any blocking call
made on an event loop thread (file or socket I/O, ``time.sleep``, locks) into an error.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from blockbuster import blockbuster_ctx

import codegen_sync
from codegen_async import APIConnectionError, CodegenError, Timeout
from codegen_async.emulator import Emulator, EmulatorThread
from codegen_sync import _portal

from .reliability_ops import World, drive_async, drive_sync, world_of

ROOT = Path(__file__).resolve().parent.parent


def _connections_to(port: int) -> list[Any]:
    """This process's TCP connections to ``port`` that are still open."""
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status != psutil.CONN_TIME_WAIT
    ]


def _open_sessions() -> list[aiohttp.ClientSession]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed]


async def _settle() -> None:
    """Let callbacks scheduled by closing (connection_lost, ...) run."""
    for _ in range(5):
        await asyncio.sleep(0)


def _is_server_side(task: asyncio.Task[Any]) -> bool:
    # The emulator's request handlers: one whose client went away mid-"hang" sleeps on
    # after the emulator stopped (aiohttp drops it from the server's connections). They
    # are the test server's, not the client's.
    return "RequestHandler." in getattr(task.get_coro(), "__qualname__", "")


def _other_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks the client left on the loop (not there before, not this test, not the server's)."""
    current = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks()
        if t not in before and t is not current and not _is_server_side(t)
    ]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=0.01, seed=0, failure_rate=0.0) as server:
        yield server


def _port(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


# --- the asyncio client ----------------------------------------------------------------------
async def test_a_full_cycle_leaves_no_task_session_socket_or_thread(emu: Emulator) -> None:
    threads_before = set(threading.enumerate())
    tasks_before = set(asyncio.all_tasks())
    sessions_before = _open_sessions()
    async with emu.client() as agent:
        world = await world_of(agent, emu.info())
        outcomes = await drive_async(agent, world)
        session = agent._transport._shared.session
        assert session is not None and not session.closed
        assert _connections_to(emu.port), "the check must see the client's own connections"
    await _settle()
    assert not [o for _, o in outcomes if isinstance(o, CodegenError)]
    assert session.closed and agent._transport._shared.session is None
    assert _connections_to(emu.port) == []
    assert _other_tasks(tasks_before) == []
    assert _open_sessions() == sessions_before
    assert set(threading.enumerate()) == threads_before


async def test_many_concurrent_clients_leave_nothing_behind(emu: Emulator) -> None:
    tasks_before = set(asyncio.all_tasks())
    threads_before = set(threading.enumerate())

    async def one() -> None:
        async with emu.client() as agent:
            await asyncio.gather(agent.get_current_user(), agent.list_runs(limit=3))

    await asyncio.gather(*(one() for _ in range(20)))
    await _settle()
    assert _connections_to(emu.port) == []
    assert _other_tasks(tasks_before) == []
    assert set(threading.enumerate()) == threads_before


async def test_faults_and_retries_leave_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codegen_async._transport.backoff_delay", lambda *a, **k: 0.01)
    tasks_before = set(asyncio.all_tasks())
    emu = Emulator(time_scale=0.01, seed=0)
    async with emu, emu.client(timeout=Timeout(total=0.2, connect=0.2), max_retries=1) as agent:
        for kind in ("drop_before_action", "drop_after_action", "truncate", "hang", "html"):
            emu.inject_fault("get_run", kind, count=10, delay=0.4)  # type: ignore[arg-type]
            with pytest.raises(CodegenError):
                await agent.get_run(1)
            emu.clear_faults()
        emu.inject_fault("run", "truncate")
        with pytest.raises(APIConnectionError):
            await agent.run("Fix the flaky test")
        assert (await agent.get_run(1)).id == 1  # the client still works afterwards
    await _settle()
    assert _connections_to(emu.port) == []
    assert _other_tasks(tasks_before) == []


async def test_cancelled_calls_and_waits_leave_nothing_behind() -> None:
    tasks_before = set(asyncio.all_tasks())
    emu = Emulator(time_scale=0.01, seed=0, failure_rate=0.0)
    async with emu, emu.client() as agent:
        # A request cancelled while the server hangs.
        emu.inject_fault("get_run", "hang", delay=5.0)
        call = asyncio.create_task(agent.get_run(1))
        await asyncio.sleep(0.1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # A wait cancelled by its caller's own deadline.
        run = await agent.run("A long task", repo_id=456)
        emu.inject_fault("get_run", "hang", count=50, delay=5.0)
        emu.inject_fault("list_runs", "hang", count=50, delay=5.0)
        with pytest.raises(asyncio.TimeoutError):  # not the builtin one on Python 3.10
            await asyncio.wait_for(agent.wait_for_run(run.id), 0.3)
        emu.clear_faults()
        # An as_completed() loop left early, and its iterator dropped.
        runs = [await agent.run(f"task {i}", repo_id=456) for i in range(3)]
        iterator = agent.as_completed([r.id for r in runs], timeout=30)
        async for _ in iterator:
            break
        del iterator
        gc.collect()
        await _settle()
    await _settle()
    assert _connections_to(emu.port) == []
    assert _other_tasks(tasks_before) == []


async def test_a_client_closed_from_another_task_mid_call_leaves_nothing() -> None:
    tasks_before = set(asyncio.all_tasks())
    async with Emulator(time_scale=0.01, seed=0) as emu:
        agent = emu.client(max_retries=0)
        emu.inject_fault("get_run", "hang", delay=5.0)
        call = asyncio.create_task(agent.get_run(1))
        await asyncio.sleep(0.1)
        await agent.aclose()
        with pytest.raises((CodegenError, asyncio.CancelledError)):
            await asyncio.wait_for(call, 10)
    await _settle()
    assert _connections_to(emu.port) == []
    assert _other_tasks(tasks_before) == []


# --- the blocking client, in a fresh interpreter -------------------------------------------
SYNC_SCRIPT = textwrap.dedent(
    """
    import asyncio, threading, warnings
    import psutil
    warnings.simplefilter("error", ResourceWarning)
    import codegen_sync
    from codegen_sync import _portal
    from codegen_async.emulator import EmulatorThread
    from tests.reliability_ops import World, drive_sync

    def open_to(port):
        return [c for c in psutil.Process().net_connections(kind="tcp")
                if c.raddr and c.raddr.port == port and c.status != psutil.CONN_TIME_WAIT]

    async def other_tasks():
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    with EmulatorThread(time_scale=0.01, seed=0, failure_rate=0.0) as emu:
        port = int(emu.base_url.rsplit(":", 1)[1])
        base = set(threading.enumerate())
        paused = None
        for _ in range(3):
            with codegen_sync.Agent(**emu.client_kwargs()) as agent:
                runs = agent.list_runs(limit=100).items
                if paused is None:
                    paused = next(r.id for r in runs if r.status == "paused")
                emu.finish_run(paused, "paused")  # resume_run needs a paused run each time
                world = World(emu.user_id, emu.org_id, 456,
                              next(r.id for r in runs if r.is_terminal), paused, 1)
                failed = [o for _, o in drive_sync(agent, world) if isinstance(o, Exception)]
                assert not failed, failed

        def work():
            with codegen_sync.Agent(**emu.client_kwargs()) as agent:
                agent.get_current_user()
                agent.list_runs(limit=3)

        workers = [threading.Thread(target=work) for _ in range(8)]
        for w in workers: w.start()
        for w in workers: w.join()

        extra = [t.name for t in set(threading.enumerate()) - base]
        assert extra == [_portal.THREAD_NAME], extra  # one shared loop, not one per client
        assert _portal.current_portal().call(other_tasks()) == []
        assert open_to(port) == [], open_to(port)
        _portal.shutdown()  # what interpreter exit does
        assert set(threading.enumerate()) - base == set()
    print("CLEAN")
    """
)


def test_sync_clients_share_one_thread_and_leave_no_socket_or_task() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", SYNC_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("CLEAN")
    assert "Unclosed" not in result.stderr, result.stderr[-3000:]


EXIT_SCRIPT = textwrap.dedent(
    """
    import codegen_sync
    from codegen_async.emulator import EmulatorThread
    emu = EmulatorThread(time_scale=0.01, seed=0)
    emu.start()
    agent = codegen_sync.Agent(**emu.client_kwargs())
    agent.get_current_user()
    keep = agent  # never closed: interpreter exit must close it, quietly and promptly
    print("EXITING")
    """
)


def test_interpreter_exit_with_an_open_sync_client_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # a hang at exit is the bug this guards against
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "EXITING" in result.stdout
    for noise in ("Unclosed client session", "Unclosed connector", "Event loop is closed",
                  "Task was destroyed", "Exception ignored"):  # fmt: skip
        assert noise not in result.stderr, result.stderr[-3000:]


# --- no blocking call inside the event loop ------------------------------------------------
async def test_no_blocking_call_in_the_event_loop_on_the_client_paths(emu: Emulator) -> None:
    async with emu.client() as agent:
        world = await world_of(agent, emu.info())
        with blockbuster_ctx():
            # Every operation, the paged iterators and the polling helpers, twice over
            # (the second time on warm connections and limiters).
            first = await drive_async(agent, world)
            second = await drive_async(agent, world)
            # Error paths too: a typed error from an answer, and a retried fault.
            emu.inject_fault("get_run", "status", status=503)
            assert (await agent.get_run(world.run_id)).id == world.run_id
            emu.inject_fault("get_run", "wrong_shape")
            with pytest.raises(CodegenError):
                await agent.get_run(world.run_id)
    failures = [o for _, o in first + second if isinstance(o, BaseException)]
    assert not failures, failures


def test_no_blocking_call_in_the_sync_clients_event_loop() -> None:
    with (
        EmulatorThread(time_scale=0.01, seed=0, failure_rate=0.0) as server,
        codegen_sync.Agent(**server.client_kwargs()) as agent,
    ):
        runs = agent.list_runs(limit=100).items
        world = World(server.user_id, server.org_id, 456,
                      next(r.id for r in runs if r.is_terminal),
                      next(r.id for r in runs if r.status == "paused"), 1)  # fmt: skip
        # blockbuster checks every thread that runs an event loop: here the client's
        # background loop (and the emulator's). This thread blocks on purpose.
        with blockbuster_ctx():
            outcomes = drive_sync(agent, world)
            # The control: a blocking call on that loop is caught.
            with pytest.raises(Exception, match="Blocking call"):
                _portal.get_portal().call(_sleep_on_the_loop())
    failures = [o for _, o in outcomes if isinstance(o, BaseException)]
    assert not failures, failures


async def _sleep_on_the_loop() -> None:
    time.sleep(0.001)  # the blocking call blockbuster must catch


async def test_blockbuster_would_catch_a_blocking_call() -> None:
    """The control: the same context does flag a blocking call made on the loop."""
    with blockbuster_ctx(), pytest.raises(Exception, match="Blocking call"):
        time.sleep(0.001)


def test_the_client_class_is_importable_without_starting_threads() -> None:
    code = (
        "import threading, codegen_async, codegen_sync; "
        "assert threading.active_count() == 1, threading.enumerate(); "
        "codegen_async.AsyncAgent('t', 1, base_url='http://127.0.0.1:9'); "
        "codegen_sync.Agent('t', 1, base_url='http://127.0.0.1:9'); "
        "assert threading.active_count() == 1, threading.enumerate()"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
