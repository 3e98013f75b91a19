"""Where a stopped scenario was waiting: its stacks, written to its log when it is stopped.

A scenario that overran its time limit used to leave an empty log. Now, on SIGTERM (the
harness's stop), it writes:

1. every thread's stack, from ``faulthandler``'s C-level handler, at once, even when no
   Python code can run;
2. then, from the Python-level handler, every task of the running event loop with its whole
   chain of awaits (``cr_await``), down to the future it waits on. A thread's stack alone
   only says "the loop is in ``select()``", not which coroutine waits for what;

and then ends as SIGTERM does. Coroutines awaited through an async generator's ``asend``
stop the chain there (CPython does not expose the generator from it).
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any, TextIO

__all__ = ["dump_stacks_on_sigterm", "dump_tasks"]


def _frames(awaitable: Any) -> Iterator[tuple[FrameType | None, Any]]:
    """(frame, object) along an await chain, outermost first."""
    seen = 0
    while awaitable is not None and seen < 200:
        seen += 1
        frame = None
        for name in ("cr_frame", "gi_frame", "ag_frame"):
            frame = getattr(awaitable, name, None)
            if frame is not None:
                break
        yield frame, awaitable
        following = None
        for name in ("cr_await", "gi_yieldfrom", "ag_await"):
            following = getattr(awaitable, name, None)
            if following is not None:
                break
        awaitable = following


def dump_tasks(loop: asyncio.AbstractEventLoop, file: TextIO) -> None:
    """Write every task of ``loop`` with its chain of awaits to ``file``."""
    tasks = asyncio.all_tasks(loop)
    file.write(f"\n{len(tasks)} asyncio task(s) of the running loop:\n")
    for task in tasks:
        file.write(f"\n{task!r}\n")
        for frame, awaitable in _frames(task.get_coro()):
            if frame is None:
                file.write(f"  awaiting {type(awaitable).__name__}: {awaitable!r:.300}\n")
                continue
            code = frame.f_code
            file.write(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n')
    file.flush()


def dump_stacks_on_sigterm() -> None:
    """On SIGTERM, write the threads' and the event loop's stacks to standard error, then
    end as SIGTERM does. Call from the main thread."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        loop = asyncio.events._get_running_loop()
        if loop is not None:
            try:
                dump_tasks(loop, sys.stderr)
            except Exception as exc:  # a diagnostic must not hide the stop
                sys.stderr.write(f"(could not list the asyncio tasks: {exc!r})\n")
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    # Registered second: its C handler runs first and then calls Python's.
    faulthandler.register(signal.SIGTERM, all_threads=True, chain=True)
