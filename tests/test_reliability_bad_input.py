"""Wrong calls are refused before any request, against the running emulator.

Each row is a call a user could plausibly get wrong (a type, a range, an id, a size, an
encoding), made on the asyncio client and on the blocking one. It must raise the named
error, the message must name the argument, and the emulator must have seen no request at
all: a bad call costs no quota and changes nothing on the server.
(``test_client_config.py`` checks a smaller table against a mock; this one goes through a
real socket to a real server, and covers every operation and the polling helpers.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

import codegen_sync
from codegen_async import AsyncAgent, CheckSuiteSettingsUpdate, ConfigurationError, RateLimits
from codegen_async.emulator import Emulator, EmulatorThread

PNG = "data:image/png;base64,iVBORw0KGgo="


@attrs.frozen
class Bad:
    """One wrong call: ``method(*args, **kwargs)`` must raise ``error`` naming ``names``."""

    label: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    error: type[Exception]
    names: str


def bad(label: str, method: str, *args: Any, error: type[Exception], names: str, **kw: Any) -> Bad:
    return Bad(label, method, args, kw, error, names)


T, V = TypeError, ValueError
BAD_CALLS = [
    # --- ids: types -------------------------------------------------------------------
    bad("run id float", "get_run", 7.5, error=T, names="agent_run_id"),
    bad("run id bytes", "get_run", b"7", error=T, names="agent_run_id"),
    bad("run id Decimal", "get_run", Decimal(7), error=T, names="agent_run_id"),
    bad("run id numeric str", "get_run", "7", error=T, names="agent_run_id"),
    bad("run id None", "get_run", None, error=T, names="agent_run_id"),
    bad("run id True", "get_run", True, error=T, names="agent_run_id"),
    bad("user id list", "get_user", [1], error=T, names="user_id"),
    bad("org id str", "get_users", "1", error=T, names="org_id"),
    bad("org id float", "get_cli_rules", 1.5, error=T, names="org_id"),
    bad("org id bool", "get_oauth_token_status", True, error=T, names="org_id"),
    bad("sandbox id str", "analyze_sandbox_logs", "1", error=T, names="sandbox_id"),
    bad("sandbox id float", "analyze_sandbox_logs", 1.0, error=T, names="sandbox_id"),
    bad("repo id str (settings)", "get_check_suite_settings", "3", error=T, names="repo_id"),
    bad("repo id None (settings)", "get_check_suite_settings", None, error=T, names="repo_id"),
    bad("pr repo id str", "edit_pull_request", "1", 2, "open", error=T, names="repo_id"),
    bad("stop run id str", "ban_all_checks", "1", error=T, names="agent_run_id"),
    bad("run repo id float", "run", "ok", repo_id=4.0, error=T, names="repo_id"),
    bad("slack org id str", "generate_slack_connect_token", "abc", error=T, names="org_id"),
    # --- ids: ranges ------------------------------------------------------------------
    bad("run id negative", "get_run", -1, error=V, names="agent_run_id"),
    bad("logs run id negative", "get_run_logs", -7, error=V, names="agent_run_id"),
    bad("org id negative", "get_integrations", -2, error=V, names="org_id"),
    bad("run org id negative", "run", "ok", org_id=-1, error=V, names="org_id"),
    bad("run repo id negative", "run", "ok", repo_id=-4, error=V, names="repo_id"),
    bad("resume run id negative", "resume_run", -1, "go on", error=V, names="agent_run_id"),
    bad("remove run id negative", "remove_from_pr", -1, error=V, names="agent_run_id"),
    bad("setup repo id negative", "generate_setup_commands", -1, error=V, names="repo_id"),
    bad("pr id negative", "edit_pull_request", 1, -2, "open", error=V, names="pr_id"),
    bad("revoke org id negative", "revoke_oauth_token", "github", -1, error=V, names="org_id"),
    # --- paging: types and ranges ------------------------------------------------------
    bad("limit 0", "get_organizations", limit=0, error=V, names="limit"),
    bad("limit 101", "get_repositories", limit=101, error=V, names="limit"),
    bad("limit negative", "get_users", limit=-5, error=V, names="limit"),
    bad("limit float", "get_users", limit=1.0, error=T, names="limit"),
    bad("limit bool", "list_runs", limit=True, error=T, names="limit"),
    bad("skip negative", "list_runs", skip=-1, error=V, names="skip"),
    bad("skip float", "get_organizations", skip=1.5, error=T, names="skip"),
    bad("skip str", "get_users", skip="0", error=T, names="skip"),
    bad("logs limit 1000", "get_run_logs", 1, limit=1000, error=V, names="limit"),
    bad("logs reverse str", "get_run_logs", 1, reverse="false", error=T, names="reverse"),
    bad("page size 101", "iter_users", page_size=101, error=V, names="page_size"),
    bad("page size str", "iter_runs", page_size="10", error=T, names="page_size"),
    bad("page size 0", "iter_repositories", page_size=0, error=V, names="page_size"),
    # --- enumerations ------------------------------------------------------------------
    bad("source type lower case", "list_runs", source_type="api", error=V, names="source_type"),
    bad("source type int", "list_runs", source_type=5, error=V, names="source_type"),
    bad("agent type capitalised", "run", "ok", agent_type="Codegen", error=V,
        names="agent_type"),
    bad("pr state upper case", "edit_pull_request", 1, 2, "OPEN", error=V, names="state"),
    bad("pr state None", "edit_pull_request_simple", 3, None, error=T, names="state"),
    bad("settings None", "update_check_suite_settings", 1, None, error=T, names="settings"),
    bad("retry count -1", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(check_retry_count=-1), error=V, names="check_retry_count"),
    bad("retry count bool", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(check_retry_count=True), error=T, names="check_retry_count"),
    bad("ignored checks a str", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(ignored_checks="lint"), error=T, names="ignored_checks"),
    bad("ignored check int", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(ignored_checks=["lint", 3]), error=T, names="ignored_checks"),
    bad("retry counts str value", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(check_retry_counts={"lint": "2"}), error=T,
        names="check_retry_counts"),
    bad("retry counts a list", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(check_retry_counts=[("lint", 2)]), error=T,
        names="check_retry_counts"),
    bad("custom prompt None", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(custom_prompts={"lint": None}), error=T,
        names="custom_prompts"),
    bad("high priority app int", "update_check_suite_settings", 1,
        CheckSuiteSettingsUpdate(high_priority_apps=[7]), error=T, names="high_priority_apps"),
    # --- text: types, sizes, encodings --------------------------------------------------
    bad("prompt None", "run", None, error=T, names="prompt"),
    bad("prompt int", "run", 42, error=T, names="prompt"),
    bad("prompt only whitespace", "run", " \t\r\n ", error=V, names="prompt"),
    bad("prompt over 1M chars", "run", "x" * 1_000_001, error=V, names="prompt"),
    bad("prompt lone surrogate", "run", "fix \udcff this", error=V, names="prompt"),
    bad("prompt NUL", "run", "fix\x00this", error=V, names="prompt"),
    bad("resume prompt None", "resume_run", 1, None, error=T, names="prompt"),
    bad("resume prompt surrogate", "resume_run", 1, "\ud800", error=V, names="prompt"),
    bad("model empty", "run", "ok", model="", error=V, names="model"),
    bad("model int", "run", "ok", model=5, error=T, names="model"),
    bad("setup prompt int", "generate_setup_commands", 1, 5, error=T, names="prompt"),
    bad("setup trigger empty", "generate_setup_commands", 1, None, "", error=V,
        names="trigger_source"),
    bad("setup trigger None", "generate_setup_commands", 1, None, None, error=T,
        names="trigger_source"),
    bad("card order id int", "ban_all_checks", 1, before_card_order_id=5, error=T,
        names="before_card_order_id"),
    bad("card order id empty", "unban_all_checks", 1, after_card_order_id="", error=V,
        names="after_card_order_id"),
    bad("provider None", "revoke_oauth_token", None, error=T, names="provider"),
    bad("provider NUL", "revoke_oauth_token", "git\x00hub", error=V, names="provider"),
    # --- images and metadata ---------------------------------------------------------
    bad("image not base64", "run", "ok", images=["data:image/png;base64,not base64!"], error=V,
        names="images[0]"),
    bad("images one str", "run", "ok", images=PNG, error=T, names="images"),
    bad("images dict", "run", "ok", images={"a": PNG}, error=T, names="images"),
    bad("second image int", "run", "ok", images=[PNG, 5], error=T, names="images[1]"),
    bad("image not a data URI", "run", "ok", images=["data:text/plain,abc"], error=V,
        names="images[0]"),
    bad("resume image bytes", "resume_run", 1, "go", images=[b"\x89PNG"], error=T,
        names="images[0]"),
    bad("metadata set value", "run", "ok", metadata={"k": {1, 2}}, error=T, names="metadata"),
    bad("metadata infinity", "run", "ok", metadata={"k": float("inf")}, error=T,
        names="metadata"),
    bad("metadata JSON text", "run", "ok", metadata="{}", error=T, names="metadata"),
    bad("metadata tuple key", "run", "ok", metadata={(1, 2): "a"}, error=T, names="metadata"),
    bad("metadata lone surrogate", "run", "ok", metadata={"k": "\udcff"}, error=V,
        names="metadata"),
    bad("metadata surrogate key", "run", "ok", metadata={"\ud800": 1}, error=V,
        names="metadata"),
    # --- per-call timeouts -------------------------------------------------------------
    bad("timeout zero", "get_run", 1, timeout=0, error=V, names="timeout"),
    bad("timeout negative", "get_current_user", timeout=-1, error=V, names="timeout"),
    bad("timeout str", "get_users", timeout="5", error=T, names="timeout"),
    # --- polling helpers ------------------------------------------------------------------
    bad("wait run id negative", "wait_for_run", -1, error=V, names="agent_run_id"),
    bad("wait timeout negative", "wait_for_run", 1, timeout=-1, error=V, names="timeout"),
    bad("wait poll interval 0", "wait_for_run", 1, poll_interval=0, error=V,
        names="poll_interval"),
    bad("wait ids a str", "wait_for_runs", "123", error=T, names="agent_run_ids"),
    bad("wait ids with a str", "wait_for_runs", [1, "2"], error=T, names="agent_run_ids"),
    bad("wait poll share 0", "wait_for_runs", [1], poll_share=0, error=V, names="poll_share"),
    bad("as_completed share 2", "as_completed", [1], poll_share=2, error=V,
        names="poll_share"),
    bad("watch run id str", "watch_run", "1", error=T, names="agent_run_id"),
]  # fmt: skip


def test_the_table_is_big_and_covers_every_kind_of_mistake() -> None:
    assert len(BAD_CALLS) >= 80
    assert len({b.label for b in BAD_CALLS}) == len(BAD_CALLS)
    assert len({b.method for b in BAD_CALLS}) >= 25


def _is_iterator_method(name: str) -> bool:
    return name.startswith("iter_") or name in ("watch_run", "as_completed")


async def _call_async(agent: AsyncAgent, case: Bad) -> None:
    result = getattr(agent, case.method)(*case.args, **case.kwargs)
    if _is_iterator_method(case.method):
        await result.__anext__()
    else:
        await result


def _call_sync(agent: codegen_sync.Agent, case: Bad) -> None:
    result = getattr(agent, case.method)(*case.args, **case.kwargs)
    if _is_iterator_method(case.method):
        next(iter(result))


@pytest.fixture(scope="module")
def emulator_thread() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, seed=0) as emu:
        yield emu


@pytest.mark.parametrize("case", BAD_CALLS, ids=[b.label for b in BAD_CALLS])
async def test_async_client_refuses_before_any_request(case: Bad) -> None:
    async with Emulator(time_scale=0.01, seed=0) as emu, emu.client(max_retries=0) as agent:
        with pytest.raises(case.error) as info:
            await asyncio.wait_for(_call_async(agent, case), 10)
        stats = emu.stats()
    assert case.names in str(info.value), str(info.value)
    assert emu.token not in str(info.value)
    assert stats["requests_total"] == 0 and stats["unknown_routes"] == 0, stats["requests"]
    assert agent.stats.requests == 0


@pytest.mark.parametrize("case", BAD_CALLS, ids=[b.label for b in BAD_CALLS])
def test_sync_client_refuses_before_any_request(case: Bad, emulator_thread: EmulatorThread) -> None:
    emulator_thread.reset_stats()
    with (
        codegen_sync.Agent(**emulator_thread.client_kwargs(max_retries=0)) as agent,
        pytest.raises(case.error) as info,
    ):
        _call_sync(agent, case)
    assert case.names in str(info.value), str(info.value)
    stats = emulator_thread.stats()
    assert stats["requests_total"] == 0 and stats["unknown_routes"] == 0, stats["requests"]


# --- settings refused when the client is built (nothing to send yet) -------------------
BAD_SETTINGS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("token with a line break", {"token": "abc\r\nX-Evil: 1"}, ConfigurationError, "line break"),
    ("blank token", {"token": "   "}, ConfigurationError, "token"),
    ("org id text", {"org_id": "acme"}, ConfigurationError, "org_id"),
    ("org id negative", {"org_id": -1}, ValueError, "org_id"),
    ("base URL ftp", {"base_url": "ftp://127.0.0.1:21"}, ConfigurationError, "base_url"),
    ("base URL no host", {"base_url": "http://"}, ConfigurationError, "base_url"),
    ("plain http elsewhere", {"base_url": "http://api.codegen.com"}, ConfigurationError,
     "allow_insecure_http"),
    ("max retries negative", {"max_retries": -1}, ValueError, "max_retries"),
    ("max retries float", {"max_retries": 1.5}, ValueError, "max_retries"),
    ("timeout negative", {"timeout": -3}, ValueError, "timeout"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("label", "override", "error", "names"), BAD_SETTINGS, ids=[s[0] for s in BAD_SETTINGS]
)
async def test_bad_settings_are_refused_before_any_request(
    label: str, override: dict[str, Any], error: type[Exception], names: str
) -> None:
    async with Emulator(time_scale=0.01, seed=0) as emu:
        kwargs = {**emu.client_kwargs(rate_limits=RateLimits.disabled()), **override}
        with pytest.raises(error, match=names):
            AsyncAgent(**kwargs)
        with pytest.raises(error, match=names):
            codegen_sync.Agent(**kwargs)
        assert emu.stats()["requests_total"] == 0
