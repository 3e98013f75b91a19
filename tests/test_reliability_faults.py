"""The fault matrix: every injected fault, on one idempotent read and one creating call.

Each cell runs against a fresh emulator, injects one fault (or a persistent one), makes one
call, and checks that it ends the only acceptable way: success after retries, or the typed
error, inside a generous guard (a hang guard, not a speed assertion), with the emulator's
``runs_created`` showing that no run was ever created twice. Backoff is shortened (the
delays themselves are unit-tested in ``test_client_errors.py``); the ``Retry-After`` each
retry was told to honour is recorded and checked.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import attrs
import pytest

from codegen_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncAgent,
    CodegenError,
    InternalServerError,
    RateLimitError,
    RateLimits,
    Timeout,
)
from codegen_async._endpoints import ENDPOINTS
from codegen_async.emulator import Emulator
from codegen_async.errors import error_class_for

GUARD = 20.0  # seconds: a cell that takes longer is hung, whatever the machine's load
RETRY_AFTER_SECONDS = 0.2
HANG = 0.8  # the server's hang, longer than the client's timeout below
HANG_TIMEOUT = Timeout(total=0.4, connect=0.4)  # ample for a loopback answer, even loaded
MAX_RETRIES = 2
PERSISTENT = 10  # more faults than the client has attempts (aiohttp may resend a GET once)
STATUSES = (500, 502, 503, 504, 408, 429)
OPERATIONS = ("get_run", "run")


@attrs.frozen
class Cell:
    """One fault on one operation, and how the call must end."""

    operation: str
    fault: str  # an emulator fault kind, or "refused" / "refused_then_up" (no server yet)
    count: int
    expect: type[CodegenError] | None  # None: the call succeeds
    runs_created: int | None  # exact, or None when the server may or may not have acted
    attempts: int | None = None  # exact requests the emulator sees, where deterministic
    status: int | None = None
    retry_after: str | None = None  # None, "seconds" or "date"

    @property
    def id(self) -> str:
        parts = [self.operation, self.fault]
        if self.status is not None:
            parts.append(str(self.status))
        if self.retry_after:
            parts.append(f"retry-after-{self.retry_after}")
        parts.append("once" if self.count == 1 else "persistent")
        return "-".join(parts)


def _status_cells() -> Iterator[Cell]:
    for operation in OPERATIONS:
        creates = operation == "run"
        for status in STATUSES:
            # A 429 is a refusal before acting, so even a creating call is retried.
            retried = not creates or status == 429
            for retry_after in (None, "seconds", "date"):
                for count in (1, MAX_RETRIES + 1):
                    if retried and count == 1:
                        expect, attempts, runs = None, 2, int(creates)
                    elif retried:
                        expect, attempts, runs = error_class_for(status), MAX_RETRIES + 1, 0
                    else:
                        expect, attempts, runs = error_class_for(status), 1, 0
                    yield Cell(
                        operation, "status", count, expect, runs, attempts, status, retry_after
                    )


def _connection_cells() -> Iterator[Cell]:
    for operation in OPERATIONS:
        creates = operation == "run"
        # No connection was made, so the server cannot have acted: retried even for a run.
        yield Cell(operation, "refused", PERSISTENT, APIConnectionError, 0)
        yield Cell(operation, "refused_then_up", 1, None, int(creates))
        # Connection dropped (before or after the server acted), body cut short, hang: a
        # read is retried; a creating call is not, because the run may exist already.
        for kind, acted in (
            ("drop_before_action", False),
            ("drop_after_action", True),
            ("truncate", True),
            ("hang", None),
        ):
            error = APITimeoutError if kind == "hang" else APIConnectionError
            runs = None if acted is None else int(acted)
            if creates:
                yield Cell(operation, kind, 1, error, runs, attempts=1)
                yield Cell(operation, kind, PERSISTENT, error, runs, attempts=1)
            else:
                yield Cell(operation, kind, 1, None, 0)
                yield Cell(operation, kind, PERSISTENT, error, 0)
        # A proxy's HTML error page: a 502, retried for a read.
        if creates:
            yield Cell(operation, "html", 1, InternalServerError, 0, attempts=1)
            yield Cell(operation, "html", PERSISTENT, InternalServerError, 0, attempts=1)
        else:
            yield Cell(operation, "html", 1, None, 0, attempts=2)
            yield Cell(operation, "html", PERSISTENT, InternalServerError, 0, attempts=3)
        # A 200 that is not JSON, or JSON of the wrong shape: never retried (the server
        # answered; asking again would not change its mind), always a typed error.
        yield Cell(operation, "non_json", 1, APIResponseValidationError, 0, attempts=1)
        yield Cell(
            operation, "wrong_shape", 1, APIResponseValidationError, int(creates), attempts=1
        )


CELLS = [*_status_cells(), *_connection_cells()]


def test_the_matrix_covers_every_fault() -> None:
    kinds = {c.fault for c in CELLS}
    assert kinds == {
        "status",
        "refused",
        "refused_then_up",
        "drop_before_action",
        "drop_after_action",
        "truncate",
        "hang",
        "html",
        "non_json",
        "wrong_shape",
    }
    for operation in OPERATIONS:
        for status in STATUSES:
            for retry_after in (None, "seconds", "date"):
                assert any(
                    c.operation == operation and c.status == status and c.retry_after == retry_after
                    for c in CELLS
                )
    assert len({c.id for c in CELLS}) == len(CELLS) >= 100


@attrs.define
class BackoffSpy:
    """Stands in for ``backoff_delay``: records the server's hint, waits a few ms."""

    hints: list[float | None] = attrs.field(factory=list)
    # For "refused_then_up": starts the server on the first backoff; the client then backs
    # off until the server is up (no race with a fixed delay).
    start_server: Any = None
    _starting: asyncio.Task[None] | None = None

    def __call__(self, attempt: int, *, retry_after: float | None = None, **_: Any) -> float:
        self.hints.append(retry_after)
        if self.start_server is None:
            return 0.01
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self.start_server())
        return 0.0 if self._starting.done() else 0.1


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> BackoffSpy:
    spy = BackoffSpy()
    monkeypatch.setattr("codegen_async._transport.backoff_delay", spy)
    return spy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _call(agent: AsyncAgent, operation: str, run_id: int, timeout: Timeout) -> Any:
    if operation == "get_run":
        return await agent.get_run(run_id, timeout=timeout)
    return await agent.run("Fix the flaky test", repo_id=None, timeout=timeout)


def _retry_after_value(kind: str | None) -> float | str | None:
    if kind == "seconds":
        return RETRY_AFTER_SECONDS
    if kind == "date":
        return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=1), usegmt=True)
    return None


def _check_hints(cell: Cell, hints: list[float | None]) -> None:
    """Every retry was told the server's ``Retry-After``, read correctly."""
    for hint in hints:
        if cell.retry_after is None:
            assert hint is None
        elif cell.retry_after == "seconds":
            assert hint == pytest.approx(RETRY_AFTER_SECONDS)
        else:
            assert hint is not None and 0.0 <= hint <= 1.5


def _check_outcome(cell: Cell, outcome: Any) -> None:
    if cell.expect is None:
        assert not isinstance(outcome, BaseException), f"{cell.id}: {outcome!r}"
        assert outcome.id > 0
        return
    assert isinstance(outcome, cell.expect), f"{cell.id}: got {outcome!r}"
    assert isinstance(outcome, CodegenError)
    if cell.status is not None:
        assert outcome.status_code == cell.status  # type: ignore[attr-defined]
    if cell.fault == "html":
        assert "HTML" in outcome.message  # type: ignore[attr-defined]
    if cell.fault == "wrong_shape":
        assert outcome.path and outcome.path.startswith("$")  # type: ignore[attr-defined]
    if isinstance(outcome, RateLimitError) and cell.retry_after == "seconds":
        assert outcome.retry_after == pytest.approx(RETRY_AFTER_SECONDS)


async def _run_cell(cell: Cell, backoff: BackoffSpy) -> None:
    route = ENDPOINTS[cell.operation].route
    timeout = Timeout(total=5.0, connect=2.0)
    if cell.fault.startswith("refused"):
        port = _free_port()
        emu = Emulator(time_scale=0.01, seed=0, port=port)
        if cell.fault == "refused_then_up":
            # The server comes up while the client backs off after its first refusal.
            backoff.start_server = emu.start
        agent = AsyncAgent(
            emu.token,
            emu.org_id,
            base_url=f"http://127.0.0.1:{port}",
            timeout=timeout,
            max_retries=100 if cell.fault == "refused_then_up" else MAX_RETRIES,
            rate_limits=RateLimits.documented(scale=0.01),
        )
        try:
            async with agent:
                try:
                    outcome: Any = await _call(agent, cell.operation, 1, timeout)
                except CodegenError as exc:
                    outcome = exc
            _check_outcome(cell, outcome)
            if cell.fault == "refused":
                assert agent.stats.requests == MAX_RETRIES + 1  # every attempt was made
            else:
                assert agent.stats.requests >= 2
                stats = emu.stats()
                assert stats["requests"][route] == 1
                assert stats["runs_created"] == cell.runs_created
        finally:
            await emu.stop()
        return

    async with Emulator(time_scale=0.01, seed=0) as emu:
        async with emu.client(timeout=timeout, max_retries=MAX_RETRIES) as agent:
            run_id = (await agent.run("a run to read", repo_id=None)).id
            emu.reset_stats()
            emu.inject_fault(
                cell.operation,
                cell.fault,  # type: ignore[arg-type]
                count=cell.count,
                status=cell.status,
                retry_after=_retry_after_value(cell.retry_after),
                delay=HANG if cell.fault == "hang" else None,
            )
            call_timeout = HANG_TIMEOUT if cell.fault == "hang" else timeout
            try:
                outcome = await _call(agent, cell.operation, run_id, call_timeout)
            except CodegenError as exc:
                outcome = exc
            if cell.fault == "hang" and cell.operation == "run":
                await asyncio.sleep(HANG + 0.1)  # let the server finish what it started
            stats = emu.stats()
        _check_outcome(cell, outcome)
        if cell.fault == "status":
            _check_hints(cell, backoff.hints)
        if cell.attempts is not None:
            assert stats["requests"][route] == cell.attempts, stats["requests"]
        # The point of it all: no run was ever created twice.
        assert stats["runs_created"] <= 1
        if cell.runs_created is not None:
            assert stats["runs_created"] == cell.runs_created
        if cell.expect is None and cell.operation == "run":
            assert stats["runs_created"] == 1


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
async def test_fault_cell(cell: Cell, backoff: BackoffSpy) -> None:
    await asyncio.wait_for(_run_cell(cell, backoff), GUARD)
