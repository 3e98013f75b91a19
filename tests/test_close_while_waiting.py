"""Closing a client ends its own calls that wait for quota at once, with ClientClosedError;
another client's waiter on the same (shared) limiter keeps its place."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time

import pytest

import codegen_sync
from codegen_async import AsyncAgent, ClientClosedError, Quota, RateLimits
from codegen_async.emulator import Emulator, EmulatorThread

# One run per 30 s: the second call waits a whole window for quota.
LIMITS = RateLimits({"run": Quota(1, 30.0)}, margin=0.0)


async def test_closing_ends_its_own_quota_waiters_at_once() -> None:
    async with Emulator(rate_limit="off") as emu:
        kwargs = emu.client_kwargs(rate_limits=LIMITS)
        closing = AsyncAgent(**kwargs)
        other = AsyncAgent(**kwargs)  # same token and limits: the same limiter
        try:
            await closing.run("first", repo_id=456)
            waits = asyncio.ensure_future(closing.run("waits", repo_id=456))
            others = asyncio.ensure_future(other.run("waits too", repo_id=456))
            await asyncio.sleep(0.3)
            started = time.monotonic()
            await closing.aclose()
            with pytest.raises(ClientClosedError):
                await asyncio.wait_for(waits, 20)
            assert time.monotonic() - started < 5.0  # not the 30 s window
            await asyncio.sleep(0.1)
            assert not others.done()  # the other client's waiter stays in line
            others.cancel()
            await asyncio.gather(others, return_exceptions=True)
        finally:
            await closing.aclose()
            await other.aclose()


def test_closing_the_sync_agent_ends_its_quota_waiter_at_once() -> None:
    with EmulatorThread(rate_limit="off") as emu:
        agent = codegen_sync.Agent(**emu.client_kwargs(rate_limits=LIMITS))
        agent.run("first", repo_id=456)
        caught: list[BaseException] = []

        def waiter() -> None:
            try:
                agent.run("waits", repo_id=456)
            except BaseException as exc:  # recorded for the assertion
                caught.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)
        agent.close()
        thread.join(10.0)
        assert not thread.is_alive(), "the waiter did not end at close"
        assert len(caught) == 1 and isinstance(caught[0], ClientClosedError)


async def test_closing_ends_wait_for_run_with_client_closed_error() -> None:
    async with Emulator() as emu:
        agent = AsyncAgent(**emu.client_kwargs())
        try:
            run = await agent.run("x", repo_id=456)
            waits = asyncio.ensure_future(agent.wait_for_run(run.id, timeout=30))
            await asyncio.sleep(0.1)
            await agent.aclose()
            with pytest.raises(ClientClosedError):
                await asyncio.wait_for(waits, 20)
        finally:
            await agent.aclose()


def test_a_closed_sync_agent_raises_client_closed_error() -> None:
    with EmulatorThread() as emu:
        agent = codegen_sync.Agent(**emu.client_kwargs())
        agent.get_current_user()
        agent.close()
        with pytest.raises(ClientClosedError):
            agent.get_current_user()


@pytest.mark.parametrize("used", ["neither", "parent", "child"])
@pytest.mark.parametrize("closed", ["child", "parent"])
def test_closing_either_sync_client_of_with_options_closes_both(used: str, closed: str) -> None:
    """They share one session (README), used or not: as with the asyncio client."""
    with EmulatorThread() as emu:
        parent = codegen_sync.Agent(**emu.client_kwargs())
        child = parent.with_options(max_retries=0)
        if used == "parent":
            parent.get_current_user()
        elif used == "child":
            child.get_current_user()
        (child if closed == "child" else parent).close()
        other = parent if closed == "child" else child
        with pytest.raises(ClientClosedError):
            other.get_current_user()
        parent.close()
        child.close()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 cannot tell two cancellations apart")
@pytest.mark.parametrize("turns", [None, 0, 1, 2, 3, 4])
async def test_a_quota_waiter_cancelled_as_its_client_closes_ends_cancelled(
    turns: int | None,
) -> None:
    # Closing the client cancels its quota waiters and turns that into ClientClosedError;
    # a cancellation by the task's owner in the same turn (asyncio.timeout, a TaskGroup,
    # task.cancel()) was turned into ClientClosedError with it: the owner's cancel, which
    # task.cancel() had accepted, was lost.
    async with Emulator(rate_limit="off") as emu:
        agent = AsyncAgent(**emu.client_kwargs(rate_limits=LIMITS))
        try:
            await agent.run("first", repo_id=456)
            waits = asyncio.ensure_future(agent.run("waits", repo_id=456))
            await asyncio.sleep(0.2)
            closing = None
            if turns is not None:  # the client closes first, the owner cancels turns later
                closing = asyncio.ensure_future(agent.aclose())
                for _ in range(turns):
                    await asyncio.sleep(0)
            accepted = waits.cancel()
            if closing is None:
                closing = asyncio.ensure_future(agent.aclose())
            with pytest.raises(asyncio.CancelledError if accepted else ClientClosedError):
                await asyncio.wait_for(waits, 20)
            await closing
        finally:
            await agent.aclose()


class _StallingServer:
    """Answers every request with headers and the start of a body, then stalls (or, with
    ``headers=False``, sends nothing at all)."""

    def __init__(self, *, headers: bool) -> None:
        self.headers = headers
        self.stalled = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        if self.headers:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"id": 1'
            )
            await writer.drain()
        self.stalled.set()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client goes


@pytest.mark.parametrize("headers", [True, False], ids=["in-body", "before-headers"])
@pytest.mark.parametrize(
    "owner_cancels",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 cannot tell"),
        ),
    ],
)
async def test_closing_ends_a_call_whose_answer_stalled(headers: bool, owner_cancels: bool) -> None:
    # A call reading an answer's body when its client closed read on until its timeout (for
    # good with timeout=None): aiohttp's session.close() does not end a body read in
    # progress (aio-libs/aiohttp#5582).
    server = _StallingServer(headers=headers)
    async with server as base_url:
        agent = AsyncAgent(token="t" * 20, org_id=1, base_url=base_url, timeout=None)
        try:
            call = asyncio.ensure_future(agent.get_run(1))
            await asyncio.wait_for(server.stalled.wait(), 10)
            closing = asyncio.ensure_future(agent.aclose())
            if owner_cancels:  # in the same turn: the owner's cancellation wins
                assert call.cancel()
            await closing
            with pytest.raises(asyncio.CancelledError if owner_cancels else ClientClosedError):
                await asyncio.wait_for(call, 10)
        finally:
            await agent.aclose()
