"""The one event loop on which every blocking client runs its coroutines.

A process has at most one :class:`Portal`: an asyncio event loop shared by every
``codegen_sync`` client (so that they share connections, rate limiters and sessions), and a
daemon thread that runs it whenever nobody else does. A blocking call (:meth:`Portal.call`)
runs its coroutine on that loop in one of two ways:

- **in the calling thread**, when the loop is idle ("parked") and the thread runs no event
  loop of its own: the caller runs the loop itself until its call is done. No thread hop, so a
  blocking call costs about what the awaited one does. The thread waits, as it would anyway.
- **through the loop thread**, when the loop is busy (another thread's call is in flight, or a
  background task lives on it, such as a fleet's keeper or a client being closed), or when the
  calling thread already runs an event loop (a notebook): one ``call_soon_threadsafe`` and one
  bare lock, the cheapest hop there is (``anyio.from_thread.BlockingPortal`` costs three times
  as much, ``run_coroutine_threadsafe`` half as much again; see ``benchmarks/bench_sync.py``).

The loop has one runner at a time, decided under one lock: parked, the loop thread, or a
calling thread ("borrowed"). A borrowed run runs that one call and what it starts, nobody
else's code: a call handed in meanwhile is held, the borrower is asked to stop its run, and
gives the loop (its own call included, if unfinished) to the loop thread, then waits like any
caller. That keeps the main thread's signal handlers out of other threads' calls. The loop
thread parks the loop once it has had nothing to do for LINGER. A call taking a parked loop
lets it turn once before its first step, to read what arrived while nobody ran it (the end
of a keep-alive connection the server closed); no call starts eagerly, for the same reason.
Either way the coroutine runs in a copy of the calling thread's ``contextvars`` context, and
callbacks (``on_update=``) run on whichever thread runs the loop at that moment.

Ctrl-C while the main thread runs the loop for its call: Python's default handler would raise
``KeyboardInterrupt`` in whatever the loop runs (an aiohttp callback, this module's
bookkeeping), so for the length of the call a handler that never raises stands in
(:class:`_CtrlC`): the first Ctrl-C cancels the call, a second hands it to the loop thread to
finish cancelling, and the call raises ``KeyboardInterrupt`` itself. With a program's own
SIGINT handler in place the main thread never borrows the loop. A signal handler or finalizer
that makes a blocking call while its thread holds the loop or the lock gets ``RuntimeError``
(it would wait for itself).

Lifecycle:

- started lazily, by the first call (never at import, so that a process that forks before
  using the client has no thread to lose);
- after ``os.fork()`` the child drops the parent's loop without touching it (its thread does
  not exist in the child), lets go of the sockets it inherited, and starts its own loop on
  first use;
- at interpreter exit (``atexit``) the clients still open are closed, every task is cancelled
  and awaited, asynchronous generators and the default executor are shut down, and the thread
  is joined: no thread and no socket is left behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import logging
import os
import signal
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Generic, Protocol, TypeVar

__all__ = ["Portal", "get_portal", "shutdown"]

log = logging.getLogger("codegen_sync")

try:  # the C functions, without the conversions to enums of signal.py (~30 calls a call)
    import _signal as _signals  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - not CPython
    _signals = signal

T = TypeVar("T")

THREAD_NAME: Final = "codegen_sync-loop"
# How long interpreter exit may wait for open clients to close and tasks to finish.
EXIT_TIMEOUT: Final = 5.0
# How long the loop thread keeps running an idle loop before parking it: calls handed in one
# after another (a notebook's) then find it running, rather than waking it each time.
LINGER: Final = 0.05

# Who runs the loop (see _Turn).
_PARKED: Final = "parked"  # nobody: the next blocking call runs it in its own thread
_LOOP_THREAD: Final = "loop thread"
_CALLER: Final = "calling thread"
_CLOSED: Final = "closed"
_NOT_HERE: Final = object()  # _call_here could not take the loop
# What the main thread's Ctrl-C handler is doing (_CtrlC.phase).
_BEFORE, _RUNNING, _AFTER, _WAITING = range(4)


class Closeable(Protocol):
    """Something the portal closes at interpreter exit (an ``AsyncAgent``)."""

    async def aclose(self) -> None: ...


class _Waiter(Generic[T]):
    """The outcome of one call, and a bare lock the calling thread blocks on until it is in.

    A lock is the cheapest wake-up there is (``concurrent.futures.Future`` adds a condition
    variable and callbacks); it is created held and released once, by the loop thread.
    """

    __slots__ = ("awaitable", "context", "error", "finished", "lock", "portal", "task", "value")

    def __init__(self, awaitable: Awaitable[T], portal: Portal) -> None:
        self.awaitable: Awaitable[T] | None = awaitable
        self.portal = portal
        self.context = contextvars.copy_context()
        self.lock = threading.Lock()
        self.lock.acquire()
        self.value: T | None = None
        self.error: BaseException | None = None
        self.finished = False
        self.task: asyncio.Task[None] | None = None

    def finish_unstarted(self, _task: object = None) -> None:
        """Wake the caller of a task cancelled before its first step (``_drive`` never ran)."""
        if not self.finished:
            if self.awaitable is not None:
                _discard(self.awaitable)
                self.awaitable = None
            self.error = asyncio.CancelledError()
            self.finished = True
            self.lock.release()
            self.portal._unit_done()


async def _drive(waiter: _Waiter[T]) -> None:
    """Run on the loop: await, keep the outcome, wake the caller (always, even if cancelled)."""
    try:
        awaitable, waiter.awaitable = waiter.awaitable, None
        waiter.value = await awaitable  # type: ignore[misc]  # set until _drive starts
    except BaseException as exc:  # every outcome goes back to the caller
        waiter.error = exc
    finally:
        waiter.finished = True
        waiter.lock.release()
        waiter.portal._unit_done()


async def _run_and_stop(portal: Portal, awaitable: Awaitable[T]) -> T:
    """A call run in the calling thread.

    Its first step only yields: the parked loop first reads what arrived while nobody ran it,
    such as the end of a keep-alive connection the server closed, which the call would
    otherwise take from the pool (a POST then fails with "Can not write request body"; a
    break-it review made that happen with two clients called back to back, a millisecond
    apart). It stops the loop in the very turn it ends, one turn sooner than
    ``run_until_complete``, whose stop is a done callback.
    """
    started = False
    try:
        await asyncio.sleep(0)
        started = True
        return await awaitable
    finally:
        if not started:  # cancelled in its first turn
            _discard(awaitable)
        if portal._runner == _CALLER:  # still this thread's run (not handed over)
            portal.loop.stop()


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close a coroutine that will never run (no "was never awaited" warning)."""
    if isinstance(awaitable, Coroutine):
        awaitable.close()


class Portal:
    """An asyncio event loop, the daemon thread that runs it when nobody else does, and
    blocking calls into it.

    Use :func:`get_portal` rather than creating one: there is one per process.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        # Counts the tasks made on the loop (background work that keeps the loop thread on).
        self.loop.set_task_factory(self._new_task)
        self.thread_id: int | None = None
        # Guards who runs the loop (``_runner``), the units handed in from other threads
        # (``_handed_in``) and ``_stopping``: once that is set no call may be handed to the
        # loop, since a callback queued after ``loop.stop()`` would never run and its caller
        # never wake. Re-entrant: a signal handler or a finalizer may make a call while its
        # thread holds it. The loop never takes it (a thread holding it may be waiting for
        # the loop): what only the thread running the loop writes needs no lock.
        self._state_lock = threading.RLock()
        self._turn = threading.Condition(self._state_lock)
        self._runner = _PARKED
        self._handed_in = 0
        self._finished = 0  # of the units handed in; written only by the thread running the loop
        self._tasks = 0  # likewise
        self._borrower: int | None = None  # the thread running the loop for its own call
        # (the last one; it is only read while _runner says a calling thread runs it)
        self._borrowing = 0  # counts borrowings, so that a late stop request hits no other
        # Units handed in while a thread runs the loop for its own call: queued on the loop
        # only when it gives the loop to the loop thread (a borrowed run runs nobody else's
        # code, so a signal handler of the main thread never raises in another's call).
        self._held: list[Callable[[], None]] = []
        self._linger: asyncio.TimerHandle | None = None
        self._idle_since = 0.0  # loop time the loop thread last found nothing to do
        self._stopping = False
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._background: set[asyncio.Task[Any]] = set()
        self._keep: list[Any] = []  # objects a forked child must never finalize
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name=THREAD_NAME, daemon=True
        )
        self.thread.start()
        ready.wait()

    def __repr__(self) -> str:
        state = "stopping" if self._stopping else self._runner
        return f"<Portal pid={self.pid} thread={self.thread.name!r} {state}>"

    # --- the loop thread ---------------------------------------------------------------
    def _run(self, ready: threading.Event) -> None:
        loop = self.loop
        _raise_mmap_threshold()
        self.thread_id = threading.get_ident()
        asyncio.set_event_loop(loop)
        ready.set()
        try:
            while self._wait_for_a_turn():
                loop.run_forever()
        finally:
            # Whatever was still queued when the loop stopped: cancel it and let it finish,
            # so that every caller wakes up and no task is left pending.
            try:
                # One more turn first, so that tasks created by the last callbacks take their
                # first step (and enter _drive's try block) before they are cancelled.
                loop.run_until_complete(asyncio.sleep(0))
                _cancel_all_tasks(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def _wait_for_a_turn(self) -> bool:
        """In the loop thread: park the loop if nothing is left, wait until it is this
        thread's to run; ``False`` once the portal shuts down."""
        with self._turn:
            while True:
                if self._stopping and self._runner != _CALLER:
                    self._runner = _CLOSED
                    return False
                if self._runner == _LOOP_THREAD:
                    if self._calls or self._tasks:
                        return True
                    self._park()
                self._turn.wait()

    def _park(self) -> None:  # with _state_lock held
        self._runner = _PARKED

    def _new_task(
        self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        self._tasks += 1
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, _task: object) -> None:
        self._tasks -= 1
        self._idle_check()

    @property
    def _calls(self) -> int:
        """Units handed in from other threads (calls, spawns) and not over yet."""
        return self._handed_in - self._finished

    def _unit_done(self) -> None:
        """In the loop: one unit handed in from another thread (a call, a spawn) is over."""
        self._finished += 1
        self._idle_check()

    def _idle_check(self) -> None:
        # In the loop. Only the loop thread parks the loop (a calling thread stops running
        # it when its own call is done): once it has had no work for LINGER, it stops
        # run_forever and decides under the lock (_wait_for_a_turn).
        if self._runner == _LOOP_THREAD and not (self._calls or self._tasks):
            self._idle_since = self.loop.time()
            if self._linger is None:
                self._linger = self.loop.call_later(LINGER, self._stop_if_idle)

    def _stop_if_idle(self) -> None:
        self._linger = None
        if self._calls or self._tasks:
            return  # busy again: the next idle moment starts a new wait
        left = self._idle_since + LINGER - self.loop.time()
        if left > 0:  # work came and went meanwhile: idle for LINGER since the last of it
            self._linger = self.loop.call_later(left, self._stop_if_idle)
        else:
            self.loop.stop()

    def _start(self, waiter: _Waiter[Any]) -> None:
        # A task copies the context current when it is made: the caller's, here. Never an
        # eager start (3.12+): its first step would run before the callbacks of what the
        # selector read in the same turn, such as the end of a keep-alive connection the
        # server closed, and take that connection from the pool (see _run_and_stop).
        waiter.task = waiter.context.run(asyncio.Task, _drive(waiter), loop=self.loop)

    @staticmethod
    def _cancel(waiter: _Waiter[Any]) -> None:
        task = waiter.task
        if task is not None:  # always set: _start was queued first
            task.cancel()
            # Cancelled before its first step, the coroutine never enters _drive's try block.
            task.add_done_callback(waiter.finish_unstarted)

    # --- calls from other threads ----------------------------------------------------------
    @property
    def stopping(self) -> bool:
        """Whether :meth:`shutdown` has begun (no call can be made any more)."""
        return self._stopping

    @property
    def runner(self) -> str:
        """Who runs the loop now: ``"parked"`` (nobody), ``"loop thread"``, ``"calling
        thread"`` or ``"closed"``."""
        return self._runner

    @property
    def in_loop_thread(self) -> bool:
        """Whether the current thread runs this portal's loop right now (a blocking call
        from it would wait for itself)."""
        return (
            asyncio._get_running_loop() is self.loop
            or (self._runner == _CALLER and self._borrower == threading.get_ident())
            # A signal handler or finalizer that interrupts this thread's own bookkeeping:
            # the loop thread needs the lock to take over.
            or self._state_lock._is_owned()  # type: ignore[attr-defined]
        )

    def call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Run ``awaitable`` on the loop and block until it is done; return or raise its outcome.

        A ``KeyboardInterrupt`` (or any exception raised by a signal handler) while waiting
        cancels the coroutine, waits until it has finished, and is re-raised: no task is left
        running. ``timeout`` (seconds; for internal use) does the same and raises
        ``TimeoutError``.

        Raises:
            RuntimeError: called from a thread while it runs this loop (for example from a
                callback the client runs, or a signal handler or finalizer that interrupts
                such a thread: it would wait for itself forever), in a forked child of the
                process that made this portal, or after the loop was shut down at
                interpreter exit.
        """
        running = asyncio._get_running_loop()
        if self.pid != os.getpid() or self.in_loop_thread:  # in_loop_thread: running is ours
            _discard(awaitable)
            if self.pid != os.getpid():
                raise RuntimeError(
                    "this object was made before os.fork() and belongs to the parent's event "
                    "loop; make a new one in the child (clients rebind by themselves)"
                )
            raise RuntimeError(
                "a blocking codegen_sync call was made from codegen_sync's own event-loop "
                "thread (for example from a callback the client runs), which would wait for "
                "itself forever; use codegen_async.AsyncAgent and await it there instead"
            )
        if running is None and timeout is None and self._runner == _PARKED:
            outcome = self._call_here(awaitable)
            if outcome is not _NOT_HERE:
                return outcome  # type: ignore[return-value]  # T unless _NOT_HERE
        return self._call_through_loop_thread(awaitable, timeout)

    def _call_here(self, awaitable: Awaitable[T]) -> T | object:
        """Run the loop in this thread until ``awaitable`` is done, if the loop is parked;
        ``_NOT_HERE`` if it is not (or a program's own SIGINT handler is in place)."""
        loop = self.loop
        ctrl_c: _CtrlC | None = None
        if threading.current_thread() is threading.main_thread():
            ctrl_c = _CtrlC(loop)
            if not ctrl_c.install():
                return _NOT_HERE  # signal handlers may raise anywhere: not in loop code
        try:
            with self._state_lock:
                if self._runner != _PARKED or self._stopping:
                    if ctrl_c is not None and ctrl_c.interrupted:  # pressed meanwhile
                        _discard(awaitable)
                        raise KeyboardInterrupt
                    return _NOT_HERE
                self._borrower = threading.get_ident()  # before _runner: see in_loop_thread
                self._borrowing += 1
                self._runner = _CALLER
            task: asyncio.Task[T] | None = None
            try:
                if ctrl_c is not None and ctrl_c.interrupted:
                    _discard(awaitable)  # Ctrl-C before the call started
                else:
                    task = asyncio.Task(_run_and_stop(self, awaitable), loop=loop)
                    if ctrl_c is not None:
                        ctrl_c.start(task, awaitable)
                    try:
                        loop.run_forever()
                    except BaseException:
                        task.cancel()  # an exception from a signal handler: the call is off
                        raise
                    finally:
                        if ctrl_c is not None:
                            ctrl_c.phase = _AFTER
            finally:
                handed = self._hand_back(task)
            if handed is not None:  # the call goes on in the loop thread: wait for it
                assert task is not None
                if ctrl_c is None:
                    handed.acquire()  # not the main thread: no Ctrl-C here
                else:
                    if ctrl_c.abandoned:
                        raise KeyboardInterrupt
                    ctrl_c.phase = _WAITING  # a Ctrl-C now cancels; a second raises
                    if ctrl_c.interrupted and not ctrl_c.cancelled:  # pressed just before
                        ctrl_c.cancelled = True
                        loop.call_soon_threadsafe(task.cancel)
                    handed.acquire()
        finally:
            if ctrl_c is not None:
                ctrl_c.uninstall()
        if ctrl_c is not None and ctrl_c.interrupted:
            raise KeyboardInterrupt
        assert task is not None  # set unless interrupted
        try:
            return task.result()
        except asyncio.CancelledError:
            raise RuntimeError(
                "the call was cancelled on codegen_sync's event loop"
                + (" (the interpreter is exiting)" if self._stopping else "")
            ) from None

    def _hand_back(self, task: asyncio.Task[Any] | None) -> threading.Lock | None:
        """After this thread's run of the loop for its call: park the loop, or give it to
        the loop thread (with the units held meanwhile, and the call if it is unfinished).

        Returns a lock released when the unfinished call is done, else ``None``.
        """
        done: threading.Lock | None = None
        with self._turn:
            if task is not None and not task.done():
                done = threading.Lock()
                done.acquire()
                self._handed_in += 1
                task.add_done_callback(functools.partial(self._handed_over_done, done))
            if done is not None or self._held or self._calls or self._tasks or self._stopping:
                for callback in self._held:  # nobody runs the loop now: safe from here
                    self.loop.call_soon(callback)
                self._held.clear()
                self._runner = _LOOP_THREAD
                self._turn.notify()
            else:
                self._park()
        return done

    def _handed_over_done(self, done: threading.Lock, _task: object) -> None:
        done.release()
        self._unit_done()

    def _stop_borrowed_run(self, borrowing: int) -> None:
        """In the loop: end a borrowed run, so that its thread gives the loop to the loop
        thread (work was handed in meanwhile, or the portal shuts down)."""
        if self._runner == _CALLER and self._borrowing == borrowing:
            self.loop.stop()

    def _hand_in(self, callback: Callable[[], None]) -> None:  # with _state_lock held
        """Queue one unit from another thread, and see that a thread runs the loop."""
        self._handed_in += 1
        if self._runner == _CALLER:
            self._held.append(callback)
            if len(self._held) == 1:
                self.loop.call_soon_threadsafe(self._stop_borrowed_run, self._borrowing)
        else:
            self._wake_loop_thread()
            self.loop.call_soon_threadsafe(callback)

    def _call_through_loop_thread(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        waiter = _Waiter(awaitable, self)
        with self._state_lock:
            if self._stopping:
                _discard(awaitable)
                raise RuntimeError(
                    "codegen_sync's event loop has been shut down (the interpreter is exiting)"
                )
            self._hand_in(functools.partial(self._start, waiter))
        try:
            if timeout is None:
                waiter.lock.acquire()
            elif not waiter.lock.acquire(timeout=timeout):
                raise TimeoutError(f"no outcome within {timeout} s")
        except BaseException:
            # Ctrl-C: cancel the coroutine on the loop, and wait until it has really ended
            # (a second Ctrl-C abandons the wait).
            if not waiter.finished:
                self.loop.call_soon_threadsafe(self._cancel, waiter)
                waiter.lock.acquire(timeout=-1 if timeout is None else timeout)
            raise
        error = waiter.error
        if error is not None:
            waiter.error = None  # no reference cycle through the traceback
            if isinstance(error, asyncio.CancelledError):
                raise RuntimeError(
                    "the call was cancelled on codegen_sync's event loop"
                    + (" (the interpreter is exiting)" if self._stopping else "")
                ) from None
            try:
                raise error
            finally:
                del error
        return waiter.value  # type: ignore[return-value]  # set unless error is

    def _wake_loop_thread(self) -> None:  # with _state_lock held
        if self._runner == _PARKED:
            self._runner = _LOOP_THREAD
            self._turn.notify()

    def spawn(self, awaitable: Awaitable[Any]) -> None:
        """Start ``awaitable`` on the loop without waiting for it (safe from any thread).

        Used from finalizers, which must never block. Does nothing once the loop is
        stopping, or in a forked child that inherited this portal.
        """
        if self.pid != os.getpid():
            _discard(awaitable)
            return
        with self._state_lock:
            if self._stopping:
                _discard(awaitable)
                return
            self._hand_in(functools.partial(self._spawn, awaitable))

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = self.loop.create_task(_quietly(awaitable))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        self._unit_done()  # the task is counted from here on

    def track(self, client: Closeable) -> None:
        """Close ``client`` at interpreter exit if it is still open then."""
        with self._state_lock:  # the loop thread lists them at exit
            self._clients.add(client)

    # --- shutdown and fork ---------------------------------------------------------------
    def shutdown(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Close the clients still open, cancel every task, stop and join the loop thread.

        Safe to call more than once; does nothing in a forked child that inherited it.
        """
        if self.pid != os.getpid() or self._stopping or self.in_loop_thread:
            return
        try:
            self.call(self._close_all(timeout), timeout=2 * timeout)
        except Exception:  # exit must go on, whatever a client does (or a stuck loop)
            log.debug("closing codegen_sync clients at exit failed", exc_info=True)
        with self._state_lock:
            self._stopping = True
            with contextlib.suppress(RuntimeError):  # already closed
                if self._runner == _LOOP_THREAD:
                    self.loop.call_soon_threadsafe(self.loop.stop)
                elif self._runner == _CALLER:  # a (daemon) thread's call: hand it over
                    self.loop.call_soon_threadsafe(self._stop_borrowed_run, self._borrowing)
            self._turn.notify()
        self.thread.join(timeout)

    async def _close_all(self, timeout: float) -> None:
        with self._state_lock:
            clients = list(self._clients)
        pending: set[asyncio.Future[Any]] = set(self._background)
        pending.update(asyncio.ensure_future(_quietly(c.aclose())) for c in clients)
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def abandon_in_child(self) -> None:
        """In a forked child: let go of the sockets inherited from the parent's loop.

        The parent's loop must not be touched here: its thread does not exist in the child,
        and its epoll instance is shared with the parent, so unregistering a socket would
        unregister it in the parent too. Each inherited descriptor is instead pointed at
        ``/dev/null`` (``dup2``), which drops the child's reference to the socket while
        keeping the number valid for the stale Python objects that still hold it. Those
        objects are kept alive, so that no finalizer ever runs on them here.
        """
        self._keep.extend(self._clients)
        fds: set[int] = set()
        # asyncio's selector loops keep every transport they own by descriptor.
        transports = getattr(self.loop, "_transports", None)
        if transports is not None:
            for transport in list(transports.values()):
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    fds.add(sock.fileno())
        for attribute in ("_ssock", "_csock", "_selector"):  # self-pipe and epoll/kqueue
            holder = getattr(self.loop, attribute, None)
            fileno = getattr(holder, "fileno", None)
            if fileno is not None:
                with contextlib.suppress(Exception):
                    fds.add(fileno())
        fds.discard(-1)
        if not fds:
            return
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.dup2(devnull, fd)
        finally:
            os.close(devnull)


class _CtrlC:
    """Ctrl-C while the main thread runs the loop for its own call (like ``asyncio.Runner``,
    and only over Python's default handler).

    Python's default handler would raise ``KeyboardInterrupt`` in whatever the loop runs at
    that moment (a callback of aiohttp's, the portal's bookkeeping). This one raises only
    where the main thread waits in its own frame. By ``phase``: while the loop runs, the
    first Ctrl-C cancels the call and a second stops the run (the loop thread finishes the
    cancellation); while the main thread waits for a call handed to the loop thread, the
    first cancels it (from afar) and a second raises; before and between those, it is noted
    and acted on at the next of them, or raised when the call returns.
    """

    __slots__ = (
        "abandoned",
        "awaitable",
        "cancelled",
        "handler",
        "installed",
        "interrupted",
        "loop",
        "phase",
        "task",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.task: asyncio.Task[Any] | None = None
        self.awaitable: Awaitable[Any] | None = None
        self.phase = _BEFORE
        self.interrupted = False  # Ctrl-C was pressed
        self.cancelled = False  # ... and the call was told
        self.abandoned = False  # ... twice: the call is left to the loop thread
        self.installed = False
        self.handler = self._on_sigint  # one bound method, to compare by identity

    def install(self) -> bool:
        """Put this handler in place of Python's default one. ``False`` (nothing changed) if
        the program has a SIGINT handler of its own, which may raise anywhere."""
        previous = _signals.signal(signal.SIGINT, self.handler)
        if previous is signal.default_int_handler:
            self.installed = True
            return True
        _signals.signal(signal.SIGINT, previous)
        if self.interrupted and callable(previous):  # a Ctrl-C meant for the program's
            previous(signal.SIGINT, None)
        # SIG_IGN and SIG_DFL run no Python code: the loop may be taken as it is.
        return bool(previous == signal.SIG_IGN or previous == signal.SIG_DFL)

    def uninstall(self) -> None:
        if self.installed and _signals.getsignal(signal.SIGINT) is self.handler:
            _signals.signal(signal.SIGINT, signal.default_int_handler)

    def start(self, task: asyncio.Task[Any], awaitable: Awaitable[Any]) -> None:
        self.task = task
        self.awaitable = awaitable
        self.phase = _RUNNING

    def _on_sigint(self, _signum: int, _frame: object) -> None:
        task, phase = self.task, self.phase
        first = not self.interrupted
        self.interrupted = True
        if task is None or phase in (_BEFORE, _AFTER):
            return  # acted on when it can be (see Portal._call_here)
        if phase == _RUNNING:
            if first:
                self.cancelled = True
                task.cancel()
                # Cancelled before its first step, the call's coroutine never stops the run.
                task.add_done_callback(self._stop)
            else:
                self.abandoned = True
                self.loop.stop()
            # The handler runs while the loop waits in epoll, which Python then resumes with
            # what is left of its timeout: wake it so that this is seen now.
            self.loop.call_soon_threadsafe(_nothing)
        elif not self.cancelled:  # _WAITING, the loop thread runs the call
            self.cancelled = True
            self.loop.call_soon_threadsafe(task.cancel)
        else:
            self.abandoned = True
            raise KeyboardInterrupt  # out of the wait, in the portal's own frame

    def _stop(self, _task: object) -> None:
        if self.awaitable is not None:  # finished, or never started: closing is safe
            _discard(self.awaitable)
        if self.phase == _RUNNING:
            self.loop.stop()


def _nothing() -> None:
    pass


def _raise_mmap_threshold() -> None:
    """Free one 1 MiB block, so that glibc stops serving 256 KiB buffers with mmap().

    asyncio reads a socket into a fresh 256 KiB buffer (shrunk to the bytes received). In
    a thread other than the main one, glibc's malloc serves that with mmap/mremap/munmap on
    every read, until its dynamic threshold rises, which only freeing a large mmap'ed
    block does (a shrunk buffer never is one). Measured here: ~28 us a call. Elsewhere
    this is one allocation, freed at once.
    """
    block = bytearray(1 << 20)
    del block


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:  # background clean-up: nobody is waiting for it
        log.debug("codegen_sync background task failed", exc_info=True)


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


# --- the process-wide portal ------------------------------------------------------------
_lock = threading.Lock()
_portal: Portal | None = None
_exiting = False
_abandoned: list[Portal] = []  # portals inherited through fork; kept, never used


def get_portal() -> Portal:
    """The process's portal, started on first use (and again in a forked child).

    Raises:
        RuntimeError: the interpreter is exiting and the portal was shut down.
    """
    portal = _portal
    if portal is not None and portal.pid == os.getpid():
        return portal
    return _start_portal()


def current_portal() -> Portal | None:
    """The process's portal if it is running, without starting one."""
    portal = _portal
    return portal if portal is not None and portal.pid == os.getpid() else None


def _start_portal() -> Portal:
    global _portal
    with _lock:
        portal = _portal
        if portal is not None and portal.pid != os.getpid():
            # Forked without the at-fork hook having run (it always runs for os.fork()).
            _abandon(portal)
            portal = _portal = None
        if portal is None:
            if _exiting:
                raise RuntimeError(
                    "codegen_sync's event loop has been shut down (the interpreter is exiting)"
                )
            portal = _portal = Portal()
        return portal


def _abandon(portal: Portal) -> None:
    _abandoned.append(portal)
    portal.abandon_in_child()


def shutdown(timeout: float = EXIT_TIMEOUT) -> None:
    """Stop the process's portal now (run at interpreter exit); later calls raise."""
    global _exiting
    with _lock:
        _exiting = True
        portal = _portal
    if portal is not None and portal.pid == os.getpid():
        portal.shutdown(timeout)


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _lock, _portal
    _lock = threading.Lock()
    portal, _portal = _portal, None
    if portal is not None:
        _abandon(portal)


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
# Registered at import, so that it runs after the exit handlers of code that imported
# codegen_sync later (they may still use a client); atexit runs handlers last-in first-out.
atexit.register(shutdown)
