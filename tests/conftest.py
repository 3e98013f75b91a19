"""Shared fixtures. Tests talk only to 127.0.0.1 (or to aioresponses' in-process mock)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from codegen_async import AsyncAgent, RateLimits
from codegen_async._ratelimit import REGISTRY

from .recording_server import RecordingServer

BASE = "https://api.example.test"
TOKEN = "sk-test-SECRET-token-0123456789"
ORG = 123


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own CODEGEN_* settings, nor another test's limiters."""
    for name in (
        "CODEGEN_API_TOKEN",
        "CODEGEN_ORG_ID",
        "CODEGEN_API_BASE_URL",
        "CODEGEN_RATE_LIMIT_BACKEND",
        "CODEGEN_RATE_LIMIT_SCALE",
        "CODEGEN_LOG",
        # Clients honour the proxy environment: a developer's proxy must not carry the
        # tests' loopback traffic.
        *(
            v
            for n in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
            for v in (n, n.lower())
        ),
    ):
        monkeypatch.delenv(name, raising=False)
    REGISTRY.clear()
    yield
    REGISTRY.clear()


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen at once (the backoff itself is tested as a pure function)."""
    monkeypatch.setattr("codegen_async._transport.backoff_delay", lambda *a, **k: 0.0)


@pytest.fixture
async def agent() -> AsyncIterator[AsyncAgent]:
    """A client of a fake host (use with aioresponses), rate limiting off."""
    async with AsyncAgent(
        TOKEN, ORG, base_url=BASE, rate_limits=RateLimits.disabled(), max_retries=2
    ) as client:
        yield client


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A loopback server that records each request and answers by script (per test)."""
    with RecordingServer() as srv:
        yield srv


@pytest.fixture
async def client(server: RecordingServer) -> AsyncIterator[AsyncAgent]:
    """An asyncio client of ``server``, rate limiting off."""
    async with AsyncAgent(
        TOKEN, ORG, base_url=server.base_url, rate_limits=RateLimits.disabled()
    ) as agent:
        yield agent
