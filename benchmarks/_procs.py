"""Nothing a benchmark run starts outlives it.

The harness runs each scenario in its own session (``start_new_session``); a scenario starts
servers (emulators, redis-server, fleet workers), which may start more. What stops each of
them, whatever stops the run:

- **The harness ends or hits its own time limit**: :func:`stop_tree` stops the scenario,
  its process group and every descendant it can still find (``psutil``, so also those in
  another session or process group).
- **The harness gets SIGTERM, SIGHUP or SIGINT** (a CI step's ``timeout``, a closed
  terminal, Ctrl-C): the harness turns them into an exception, so the same cleanup runs.
- **The harness is SIGKILLed** (``subprocess.run(timeout=...)`` kills with SIGKILL, and so
  does pytest-timeout's fallback): it cannot clean up. So each scenario's standard input is
  a pipe from the harness that the harness never writes to, its lifeline: when the harness
  dies the kernel closes it, the scenario reads end-of-file (:func:`on_parent_exit`) and
  kills its own descendants and group (:func:`die_with_tree`). Portable POSIX, unlike
  Linux's ``PR_SET_PDEATHSIG``, and it needs no polling.
- **A server started by a scenario run by hand** (``python -m benchmarks.bench_fanout``)
  reads the same kind of lifeline from the scenario (``--exit-with-stdin``), so that killing
  the scenario, even with SIGKILL, stops it.

A descendant is looked up before anything is signalled: once its parent dies it is
re-parented (to init) and can no longer be found from the scenario.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = ["descendants", "die_with_tree", "exit_with_parent", "on_parent_exit", "stop_tree"]

_POLL: Final = 0.05


def descendants(pid: int) -> list[Any]:
    """The live descendants of ``pid`` as ``psutil.Process`` (none found without psutil)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the bench extra
        return []
    try:
        found: list[Any] = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return found


def _signal(pgid: int | None, procs: list[Any], sig: signal.Signals) -> None:
    if pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for proc in procs:
        with contextlib.suppress(Exception):  # psutil.Error: gone already
            proc.send_signal(sig)


def _alive(procs: list[Any]) -> list[Any]:
    alive = []
    for proc in procs:
        with contextlib.suppress(Exception):
            if proc.is_running() and proc.status() != "zombie":
                alive.append(proc)
    return alive


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_tree(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """Stop a child that leads its own session, its process group and all its descendants.

    SIGTERM first (servers close their sockets, a scenario writes its stacks), SIGKILL to
    whatever is left after ``grace`` seconds. Returns once the child is reaped.
    """
    pgid = proc.pid
    tree: list[Any] = []

    def look() -> list[Any]:
        # Only while the child is not reaped: its pid cannot be another process's yet.
        new = []
        if proc.returncode is None:
            new = [p for p in descendants(proc.pid) if p not in tree]
            tree.extend(new)
        return new

    _signal(pgid, look(), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _signal(None, look(), signal.SIGTERM)
        if proc.poll() is not None and not _alive(tree) and not _group_alive(pgid):
            break
        time.sleep(_POLL)
    look()
    _signal(pgid, _alive(tree), signal.SIGKILL)
    proc.wait()


def die_with_tree(reason: str) -> None:
    """Kill every descendant of this process and its process group (if it leads one), then
    this process; ``reason`` and every thread's stack go to standard error first."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"\n{reason}; stopping this process and what it started. Stacks:\n")
        sys.stderr.flush()
        faulthandler.dump_traceback(sys.stderr, all_threads=True)
    tree = descendants(os.getpid())
    _signal(None, tree, signal.SIGKILL)
    if os.getpgrp() == os.getpid():
        _signal(os.getpid(), [], signal.SIGKILL)  # the group, this process included
    os._exit(1)


def on_parent_exit(action: Callable[[], None]) -> threading.Thread:
    """Call ``action`` (in a daemon thread) when standard input reaches end-of-file.

    Standard input is the read end of a pipe whose write end only the parent holds:
    end-of-file means the parent closed it or died. It is moved to a private descriptor and
    replaced by ``/dev/null``, so that processes started from here inherit no lifeline
    (and a program that reads its input finds it empty, as before).
    """
    fd = os.dup(0)  # not inheritable
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    def watch() -> None:
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
        action()

    thread = threading.Thread(target=watch, name="parent-lifeline", daemon=True)
    thread.start()
    return thread


def exit_with_parent(grace: float = 5.0) -> threading.Thread:
    """Stop this process when its standard input (a pipe from its parent) closes.

    It is sent SIGTERM, its usual stop (a server closes its sockets); if it is still alive
    ``grace`` seconds later, it exits without cleanup.
    """

    def stop() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        os._exit(1)

    return on_parent_exit(stop)
