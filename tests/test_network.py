"""Real networks: ``proxy=``, the standard proxy environment, ``trust_env=``, ``ssl=``,
``connection_limit=``, on both clients.

A small forwarding proxy on loopback (its own thread and loop, so the blocking client can
use it too) records every request that passes through it, then forwards it to the emulator.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from codegen_async import AsyncAgent, ConfigurationError, InsecureTLSWarning
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent

_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection", "host"}
_HOP |= {"te", "trailer", "transfer-encoding", "upgrade", "content-length"}


class RecordingProxy:
    """An HTTP forward proxy on 127.0.0.1 that records ``(method, absolute URL, headers)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _forward(self, request: web.Request) -> web.Response:
        target = str(request.url)
        self.seen.append((request.method, target, dict(request.headers)))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.request(
                request.method, target, headers=headers, data=await request.read()
            ) as answer,
        ):
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            return web.Response(status=answer.status, body=body, headers=kept)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def paths(self) -> list[str]:
        return [url.split("/", 3)[3] for _, url, _ in self.seen]


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0, rate_limit="off") as emulator:
        yield emulator


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    with RecordingProxy() as recording:
        yield recording


@asynccontextmanager
async def me(kind: str, emu: EmulatorThread, **kwargs: Any) -> AsyncIterator[Any]:
    """The current user fetched by a client of ``kind``; yields the client's stats."""
    if kind == "async":
        async with AsyncAgent(**emu.client_kwargs(**kwargs)) as agent:
            user = await agent.get_current_user()
            assert user.id == emu.user_id
            yield agent
    else:
        with Agent(**emu.client_kwargs(**kwargs)) as blocking:
            user = blocking.get_current_user()
            assert user.id == emu.user_id
            yield blocking


KINDS = pytest.mark.parametrize("kind", ["async", "sync"])


@KINDS
async def test_an_explicit_proxy_carries_every_request(
    kind: str, emu: EmulatorThread, proxy: RecordingProxy
) -> None:
    async with me(kind, emu, proxy=proxy.url):
        pass
    assert proxy.paths() == ["v1/users/me"]
    method, url, headers = proxy.seen[0]
    assert method == "GET" and url.startswith(emu.base_url)
    assert headers["Authorization"] == f"Bearer {emu.token}"


@KINDS
async def test_the_proxy_environment_is_honoured_unless_trust_env_is_false(
    kind: str, emu: EmulatorThread, proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with me(kind, emu):
        pass
    assert proxy.paths() == ["v1/users/me"]
    async with me(kind, emu, trust_env=False):
        pass
    assert len(proxy.seen) == 1  # not through the proxy
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with me(kind, emu):
        pass
    assert len(proxy.seen) == 1


async def test_the_async_pool_has_the_limit(emu: EmulatorThread) -> None:
    async with AsyncAgent(**emu.client_kwargs(connection_limit=3)) as agent:
        await agent.get_current_user()
        session = agent._transport._shared.session
        assert session is not None and session.connector is not None
        assert session.connector.limit == 3
        # The environment is read once when the client is made; aiohttp's own trust_env
        # would read ~/.netrc in a thread on every request.
        assert session.trust_env is False
    with Agent(**emu.client_kwargs(connection_limit=3, trust_env=False)) as blocking:
        blocking.get_current_user()
        network = blocking._state.client._transport.config.network
        assert (network.connection_limit, network.trust_env) == (3, False)


def test_network_settings_are_checked_when_the_client_is_made(tmp_path: Path) -> None:
    base = {"token": "sk-test-0123456789", "org_id": 1, "base_url": "http://127.0.0.1:9"}
    for cls in (AsyncAgent, Agent):
        with pytest.raises(ConfigurationError, match="connection_limit"):
            cls(**base, connection_limit=0)
        with pytest.raises(ConfigurationError, match="proxy") as info:
            cls(**base, proxy="socks5://user:hunter2@proxy:1080")
        assert "hunter2" not in str(info.value)
        with pytest.raises(ConfigurationError, match="CA bundle"):
            cls(**base, ssl=str(tmp_path / "missing.pem"))
        with pytest.raises(ConfigurationError, match="ssl must be"):
            cls(**base, ssl=3)  # type: ignore[arg-type]
        with pytest.warns(InsecureTLSWarning, match="not verified"):
            cls(**base, ssl=False)
        context = ssl.create_default_context()
        cls(**base, ssl=context)
        cls(**base, ssl=ssl.get_default_verify_paths().capath or str(tmp_path))


def test_the_blocking_client_refuses_a_session() -> None:
    async def make() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(make())
    try:
        with pytest.raises(TypeError, match="cannot take session="):
            Agent(token="sk-test-0123456789", org_id=1, session=session)
    finally:
        loop.run_until_complete(session.close())
        loop.close()


@KINDS
async def test_a_netrc_entry_does_not_break_calls(
    kind: str, emu: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    async with me(kind, emu):  # aiohttp's trust_env=True: "Cannot combine AUTHORIZATION..."
        pass


def test_an_unsupported_proxy_in_the_environment_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://proxy:1080")
    agent = AsyncAgent(token="sk-test-0123456789", org_id=1, base_url="https://api.example.test")
    assert agent._config.network.proxy is None
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pw@proxy:3128")
    agent = AsyncAgent(token="sk-test-0123456789", org_id=1, base_url="https://api.example.test")
    assert agent._config.network.proxy == "http://user:pw@proxy:3128"
    assert "pw" not in repr(agent._config)
    monkeypatch.setenv("NO_PROXY", ".example.test")
    agent = AsyncAgent(token="sk-test-0123456789", org_id=1, base_url="https://api.example.test")
    assert agent._config.network.proxy is None
