"""``CODEGEN_LOG`` turns the SDK's logs on (stderr, token masked); errors carry request ids.

Both clients, against the emulator (which sends ``X-Request-Id`` on every answer).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from codegen_async import AsyncAgent, NotFoundError, Quota, RateLimits, _logging
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent

Call = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0, rate_limit="off") as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts with the SDK's logging as a fresh process has it."""
    yield
    logger = logging.getLogger("codegen_async")
    if _logging._handler is not None:
        logger.removeHandler(_logging._handler)
        _logging._handler = None
    logger.setLevel(logging.NOTSET)
    _logging._secrets.clear()


def make_call(kind: str, emu: EmulatorThread, **kwargs: Any) -> Any:
    """A context manager yielding ``await call(name, ...)`` on one client of ``kind``."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def client() -> AsyncIterator[Call]:
        if kind == "async":
            async with AsyncAgent(**emu.client_kwargs(**kwargs)) as agent:

                async def call_async(name: str, *args: Any, **kw: Any) -> Any:
                    return await getattr(agent, name)(*args, **kw)

                yield call_async
        else:
            with Agent(**emu.client_kwargs(**kwargs)) as blocking:

                async def call_sync(name: str, *args: Any, **kw: Any) -> Any:
                    return getattr(blocking, name)(*args, **kw)

                yield call_sync

    return client()


KINDS = pytest.mark.parametrize("kind", ["async", "sync"])


@KINDS
async def test_codegen_log_info_writes_each_attempt_retries_and_quota_waits(
    kind: str,
    emu: EmulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_backoff: None,
) -> None:
    monkeypatch.setenv("CODEGEN_LOG", "info")
    limits = RateLimits.documented().replace(get_current_user=Quota(1, 0.2))
    async with make_call(kind, emu, rate_limits=limits) as call:
        await call("get_current_user")
        await call("get_current_user")  # waits for the quota
        emu.inject_fault("get_current_user", "status", status=503)
        await call("get_current_user")  # one retry
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "/v1/users/me" in line]
    assert any(
        "GET " in line and "-> 200 in" in line and "request id req_emu_" in line for line in lines
    )
    assert any("waited" in line and "get_current_user quota" in line for line in lines)
    assert any("-> 503" in line for line in lines)
    assert any("retry 1 of 2" in line for line in lines)
    assert emu.token not in err


@KINDS
async def test_without_codegen_log_nothing_is_written(
    kind: str, emu: EmulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    async with make_call(kind, emu) as call:
        await call("get_current_user")
    assert capsys.readouterr().err == ""


async def test_the_handler_masks_tokens_from_any_record(
    emu: EmulatorThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CODEGEN_LOG", "debug")
    async with AsyncAgent(**emu.client_kwargs()):
        pass
    logging.getLogger("codegen_async.polling").debug("headers %s", {"auth": f"Bearer {emu.token}"})
    logging.getLogger("codegen_async").info("the token is %s", emu.token)
    logging.getLogger("codegen_async").info("Authorization: bearer abc.def-123")
    err = capsys.readouterr().err
    assert emu.token not in err and "abc.def-123" not in err
    assert err.count("<redacted>") == 3
    assert "DEBUG codegen_async.polling" in err


async def test_codegen_log_is_idempotent_and_ignores_other_values(
    emu: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger = logging.getLogger("codegen_async")
    monkeypatch.setenv("CODEGEN_LOG", "verbose")
    AsyncAgent(**emu.client_kwargs())
    assert _logging._handler is None and logger.level == logging.NOTSET
    monkeypatch.setenv("CODEGEN_LOG", "DEBUG")
    AsyncAgent(**emu.client_kwargs())
    AsyncAgent(**emu.client_kwargs())
    assert logger.handlers.count(_logging._handler) == 1 and logger.level == logging.DEBUG
    monkeypatch.setenv("CODEGEN_LOG", "info")
    AsyncAgent(**emu.client_kwargs())
    assert logger.level == logging.INFO


@KINDS
async def test_errors_carry_the_request_id_and_case_insensitive_headers(
    kind: str, emu: EmulatorThread
) -> None:
    async with make_call(kind, emu) as call:
        with pytest.raises(NotFoundError) as info:
            await call("get_run", 987654321)
    error = info.value
    assert error.request_id is not None and error.request_id.startswith("req_emu_")
    assert error.headers["x-request-id"] == error.headers["X-Request-Id"] == error.request_id
    assert "x-request-id" in error.headers
