"""The pytest plugin, used the way a user's test suite would use it (a pytest subprocess)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


def readme_ini() -> str:
    """The ``pytest.ini`` the README gives for the plugin (the suite below runs with it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```ini\n(\[pytest\]\n.*?)```", readme, re.S)
    assert len(blocks) == 1, "README.md should show one pytest.ini for the plugin"
    return str(blocks[0])


USER_TESTS = """
import asyncio
import time

import pytest

from codegen_async import AsyncAgent
from codegen_async.emulator import Emulator, EmulatorThread


async def test_async_fixture(codegen_emulator):
    assert isinstance(codegen_emulator, Emulator)
    assert codegen_emulator.time_scale == 0.01
    async with codegen_emulator.client() as agent:
        run = await agent.run("x")
        while not (run := await agent.get_run(run.id)).is_terminal:
            await asyncio.sleep(0.02)
        assert run.status == "completed"  # failure_rate is 0 by default


@pytest.mark.codegen_emulator(failure_rate=1.0, status_style="docs")
async def test_marker_overrides_options(codegen_emulator):
    async with codegen_emulator.client() as agent:
        run = await agent.run("x")
        assert run.status.raw == "running"
        while not (run := await agent.get_run(run.id)).is_terminal:
            await asyncio.sleep(0.02)
        assert run.status.raw == "failed"


def test_thread_fixture(codegen_emulator_thread):
    assert isinstance(codegen_emulator_thread, EmulatorThread)
    assert codegen_emulator_thread.base_url.startswith("http://127.0.0.1:")


def test_env_fixture(codegen_emulator_env):
    async def main():
        async with AsyncAgent() as agent:
            return (await agent.get_current_user()).id

    assert asyncio.run(main()) == codegen_emulator_env.user_id


def test_env_fixture_client_keeps_the_scaled_quotas(codegen_emulator_env):
    # A plain Agent() takes the emulator's time scale from CODEGEN_RATE_LIMIT_SCALE, like
    # Emulator.client_kwargs(): six setup-command calls against a quota of five a (scaled)
    # minute take about 0.6 s, not the 61 s of the real quota.
    from codegen_sync import Agent

    with Agent() as agent, Agent(**codegen_emulator_env.client_kwargs()) as twin:
        assert agent.rate_limits == twin.rate_limits
        started = time.monotonic()
        for _ in range(6):
            agent.generate_setup_commands(456)
        elapsed = time.monotonic() - started
        run = agent.generate_setup_commands_and_wait(457, timeout=30)
        assert run.status == "completed"
    assert elapsed < 15, elapsed
    assert agent.stats.rate_limit_wait_seconds > 0  # the sixth call was held back
    assert codegen_emulator_env.stats()["rate_limited"] == 0
"""

OVERRIDE = """
import pytest


@pytest.fixture
def codegen_emulator_options():
    return {"time_scale": 0.5, "org_id": 42}


def test_options_fixture_override(codegen_emulator_thread):
    assert codegen_emulator_thread.org_id == 42
    assert codegen_emulator_thread.time_scale == 0.5
"""


@pytest.mark.parametrize(
    "fixture_loop_scope",
    [
        # What pytest-asyncio (>= 0.24) asks every suite to set; unset, it warns at start-up,
        # and -W error would turn its warning (not the plugin's) into an INTERNALERROR.
        "function",
        # Suites with session-wide async fixtures: the emulator must still serve on the
        # tests' loop (it hung on the session loop while each test ran on its own).
        "session",
    ],
)
def test_plugin_in_a_user_suite(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fixture_loop_scope: str
) -> None:
    # The documented way: the plugin is named in the suite's conftest.py.
    pytester.makeconftest('pytest_plugins = ["codegen_async.emulator.pytest_plugin"]\n')
    pytester.makepyfile(test_user=USER_TESTS, test_override=OVERRIDE)
    # The README's pytest.ini, with the loop scope under test.
    scope_line = "asyncio_default_fixture_loop_scope = function"
    ini = readme_ini()
    assert scope_line in ini
    pytester.makeini(
        ini.replace(scope_line, f"asyncio_default_fixture_loop_scope = {fixture_loop_scope}")
    )
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", env_path)
    # Under -W error the plugin itself must stay silent; a hang fails in 20 s, not never.
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", "-W", "error", "-o", "timeout=20"
    )
    result.assert_outcomes(passed=6)
