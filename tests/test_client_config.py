"""Settings, lifecycle, and arguments refused before any request is sent."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses

from codegen_async import (
    AsyncAgent,
    CheckSuiteSettingsUpdate,
    ConfigurationError,
    RateLimits,
    Timeout,
)

from .conftest import BASE, ORG, TOKEN


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_API_TOKEN", TOKEN)
    monkeypatch.setenv("CODEGEN_ORG_ID", "42")
    monkeypatch.setenv("CODEGEN_API_BASE_URL", "http://127.0.0.1:9999/")
    client = AsyncAgent()
    assert client.org_id == 42
    assert client.base_url == "http://127.0.0.1:9999"


def test_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_API_TOKEN", "env-token")
    monkeypatch.setenv("CODEGEN_ORG_ID", "42")
    client = AsyncAgent(TOKEN, 7, base_url="https://other.example")
    assert client.org_id == 7
    assert client.base_url == "https://other.example"


def test_default_base_url_is_the_real_api() -> None:
    assert AsyncAgent(TOKEN, ORG).base_url == "https://api.codegen.com"


def test_missing_token_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="CODEGEN_API_TOKEN"):
        AsyncAgent(org_id=ORG)


async def test_missing_org_id_names_the_variable() -> None:
    async with AsyncAgent(TOKEN) as client:
        with pytest.raises(ConfigurationError, match="CODEGEN_ORG_ID"):
            await client.get_users()


def test_bad_org_id_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGEN_ORG_ID", "acme")
    with pytest.raises(ConfigurationError, match="CODEGEN_ORG_ID"):
        AsyncAgent(TOKEN)


@pytest.mark.parametrize(
    "url", ["http://api.codegen.com", "http://10.0.0.5:8080", "ftp://api.codegen.com", "nonsense"]
)
def test_insecure_or_invalid_base_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        AsyncAgent(TOKEN, ORG, base_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"])
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert AsyncAgent(TOKEN, ORG, base_url=url).base_url == url


def test_plain_http_elsewhere_needs_an_opt_in() -> None:
    client = AsyncAgent(TOKEN, ORG, base_url="http://intranet:8080", allow_insecure_http=True)
    assert client.base_url == "http://intranet:8080"


def test_token_is_never_in_repr() -> None:
    client = AsyncAgent(TOKEN, ORG, base_url=BASE)
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client._config)
    assert TOKEN not in repr(client._transport)


def test_timeout_coercion() -> None:
    assert Timeout.coerce(5) == Timeout(total=5.0, connect=5.0)
    assert Timeout.coerce(30) == Timeout(total=30.0, connect=10.0)
    assert Timeout.coerce(None) == Timeout(total=None, connect=None)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="timeout"):
            Timeout.coerce(bad)
    for wrong in (True, "5"):  # a wrong type is a TypeError (README)
        with pytest.raises(TypeError, match="timeout"):
            Timeout.coerce(wrong)  # type: ignore[arg-type]


async def test_closed_client_refuses_calls() -> None:
    client = AsyncAgent(TOKEN, ORG, base_url=BASE)
    await client.aclose()
    await client.aclose()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_current_user()


async def test_unclosed_client_warns_once() -> None:
    client = AsyncAgent(TOKEN, ORG, base_url=BASE, rate_limits=RateLimits.disabled())
    with aioresponses() as mock:
        mock.get(f"{BASE}/v1/users/me", payload={"id": 1, "github_user_id": "1",
                                                 "github_username": "a"})  # fmt: skip
        await client.get_current_user()
    session = client._transport._shared.session
    assert session is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del client
        gc.collect()
        await session.close()  # what the finaliser scheduled; done here to keep the test tidy
    ours = [w for w in caught if "was not closed" in str(w.message)]
    assert len(ours) == 1
    assert issubclass(ours[0].category, ResourceWarning)


# --- arguments refused before any request ---------------------------------------------
PNG = "data:image/png;base64,iVBORw0KGgo="
BAD_CALLS: list[tuple[str, Callable[[AsyncAgent], Awaitable[Any]], type[Exception], str]] = [
    ("id as str", lambda a: a.get_run("7"), TypeError, "agent_run_id"),
    ("id as float", lambda a: a.get_run(7.0), TypeError, "agent_run_id"),
    ("id as bool", lambda a: a.get_run(True), TypeError, "agent_run_id"),
    ("negative id", lambda a: a.get_run(-1), ValueError, "agent_run_id"),
    ("id as None", lambda a: a.get_run(None), TypeError, "agent_run_id"),
    ("user id str", lambda a: a.get_user("5"), TypeError, "user_id"),
    ("negative user id", lambda a: a.get_user(-5), ValueError, "user_id"),
    ("org id bool", lambda a: a.get_users(org_id=False), TypeError, "org_id"),
    ("negative org id", lambda a: a.get_users(org_id=-3), ValueError, "org_id"),
    ("limit 0", lambda a: a.get_users(limit=0), ValueError, "limit"),
    ("limit 101", lambda a: a.get_users(limit=101), ValueError, "limit"),
    ("limit str", lambda a: a.get_users(limit="10"), TypeError, "limit"),
    ("negative skip", lambda a: a.get_users(skip=-1), ValueError, "skip"),
    ("skip float", lambda a: a.list_runs(skip=1.5), TypeError, "skip"),
    ("empty prompt", lambda a: a.run(""), ValueError, "prompt"),
    ("blank prompt", lambda a: a.run("   \n"), ValueError, "prompt"),
    ("prompt not str", lambda a: a.run(b"bytes"), TypeError, "prompt"),
    ("prompt too long", lambda a: a.run("x" * 1_000_001), ValueError, "prompt"),
    ("lone surrogate", lambda a: a.run("fix \ud800"), ValueError, "prompt"),
    ("NUL in prompt", lambda a: a.run("a\x00b"), ValueError, "prompt"),
    ("image not data URI", lambda a: a.run("x", images=["https://x/y.png"]), ValueError,
     "images[0]"),
    ("image bad base64", lambda a: a.run("x", images=["data:image/png;base64,@@@"]), ValueError,
     "images[0]"),
    ("images a str", lambda a: a.run("x", images=PNG), TypeError, "images"),
    ("image not str", lambda a: a.run("x", images=[b"png"]), TypeError, "images[0]"),
    ("unknown agent type", lambda a: a.run("x", agent_type="gpt"), ValueError, "agent_type"),
    ("metadata list", lambda a: a.run("x", metadata=[1]), TypeError, "metadata"),
    ("metadata int key", lambda a: a.run("x", metadata={1: "a"}), TypeError, "metadata"),
    ("metadata not JSON", lambda a: a.run("x", metadata={"a": object()}), TypeError, "metadata"),
    ("metadata NaN", lambda a: a.run("x", metadata={"a": float("nan")}), TypeError, "metadata"),
    ("repo id str", lambda a: a.run("x", repo_id="456"), TypeError, "repo_id"),
    ("sandbox id neg", lambda a: a.analyze_sandbox_logs(-1), ValueError, "sandbox_id"),
    ("setup repo None", lambda a: a.generate_setup_commands(None), TypeError, "repo_id"),
    ("setup empty prompt", lambda a: a.generate_setup_commands(1, prompt=""), ValueError,
     "prompt"),
    ("source type unknown", lambda a: a.list_runs(source_type="EMAIL"), ValueError,
     "source_type"),
    ("user filter str", lambda a: a.list_runs(user_id="me"), TypeError, "user_id"),
    ("pr state unknown", lambda a: a.edit_pull_request(1, 2, "merged"), ValueError, "state"),
    ("pr id negative", lambda a: a.edit_pull_request_simple(-2, "open"), ValueError, "pr_id"),
    ("settings dict", lambda a: a.update_check_suite_settings(1, {"check_retry_count": 1}),
     TypeError, "settings"),
    ("retry count 11", lambda a: a.update_check_suite_settings(
        1, CheckSuiteSettingsUpdate(check_retry_count=11)), ValueError, "check_retry_count"),
    ("reverse not bool", lambda a: a.get_run_logs(1, reverse="yes"), TypeError, "reverse"),
    ("provider empty", lambda a: a.revoke_oauth_token(""), ValueError, "provider"),
    ("resume no prompt", lambda a: a.resume_run(1, ""), ValueError, "prompt"),
    ("page size 0", lambda a: a.iter_users(page_size=0).__anext__(), ValueError, "page_size"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "call", "error", "names"), BAD_CALLS, ids=[c[0] for c in BAD_CALLS]
)
async def test_bad_arguments_are_refused_before_any_request(
    agent: AsyncAgent,
    label: str,
    call: Callable[[AsyncAgent], Awaitable[Any]],
    error: type[Exception],
    names: str,
) -> None:
    with aioresponses() as mock:
        with pytest.raises(error) as info:
            await call(agent)
        assert mock.requests == {}, f"{label}: a request was sent"
    assert names in str(info.value)
    assert agent.stats.requests == 0


def test_the_bad_input_table_is_big_enough() -> None:
    assert len(BAD_CALLS) >= 30


async def test_body_rules_come_from_the_endpoint_table(
    agent: AsyncAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client checks the enums and ranges the table declares, not copies of them."""
    from codegen_async import ENDPOINTS

    body = ENDPOINTS["edit_pull_request"].body
    assert body is not None
    monkeypatch.setitem(body.enums, "state", ("open",))  # type: ignore[arg-type]
    settings_body = ENDPOINTS["update_check_suite_settings"].body
    assert settings_body is not None
    monkeypatch.setitem(settings_body.ranges, "check_retry_count", (0, 2))  # type: ignore[arg-type]
    with aioresponses() as mock:
        with pytest.raises(ValueError, match="state must be one of open"):
            await agent.edit_pull_request(1, 2, "closed")
        with pytest.raises(ValueError, match=r"check_retry_count must be 0\.\.2"):
            await agent.update_check_suite_settings(
                1, CheckSuiteSettingsUpdate(check_retry_count=3)
            )
        assert mock.requests == {}
