"""pytest fixtures that serve the emulated Codegen API to your own tests.

Enable the plugin in your ``conftest.py``::

    pytest_plugins = ["codegen_async.emulator.pytest_plugin"]

(or run ``pytest -p codegen_async.emulator.pytest_plugin``). Fixtures:

``codegen_emulator``
    A started :class:`~codegen_async.emulator.Emulator` on the test's event loop (needs
    pytest-asyncio; the fixture runs on the loop of the suite's default test loop scope,
    ``asyncio_default_test_loop_scope``, whatever the default fixture loop scope)::

        async def test_fix(codegen_emulator):
            async with codegen_emulator.client() as agent:
                run = await agent.run("Fix the flaky test", repo_id=456)
                done = await agent.wait_for_run(run.id)
                assert done.status == "completed"

``codegen_emulator_thread``
    A started :class:`~codegen_async.emulator.EmulatorThread`, for blocking code::

        def test_users(codegen_emulator_thread):
            agent = Agent(**codegen_emulator_thread.client_kwargs())
            assert agent.get_users().total >= 25

``codegen_emulator_env``
    ``codegen_emulator_thread`` with ``CODEGEN_API_TOKEN``, ``CODEGEN_ORG_ID``,
    ``CODEGEN_API_BASE_URL`` and ``CODEGEN_RATE_LIMIT_SCALE`` set for the test
    (:meth:`~codegen_async.emulator.Emulator.client_env`), so code that builds ``Agent()``
    with no arguments talks to the emulator and keeps its scaled quotas and poll intervals
    (six ``generate_setup_commands`` calls take about 0.6 s, not a minute).

The async fixture needs pytest-asyncio (>= 0.24) with ``asyncio_mode = auto`` (or
``@pytest.mark.asyncio`` on each test), and pytest-asyncio asks every suite to name its
fixture loop scope (unset, it warns at start-up; ``-W error`` makes that an error). Any scope
works with this plugin, e.g. in ``pytest.ini``::

    [pytest]
    asyncio_mode = auto
    asyncio_default_fixture_loop_scope = function

``codegen_emulator_options``
    The keyword arguments the fixtures pass to the emulator. The defaults are
    ``time_scale=0.01`` (runs finish in 0.05-0.3 s, a minute of quota passes in 0.6 s) and
    ``failure_rate=0.0`` (every run completes unless a test asks otherwise). Override the
    fixture in a ``conftest.py`` to change them for a directory, or mark one test::

        @pytest.mark.codegen_emulator(failure_rate=1.0, status_style="docs")
        async def test_failures(codegen_emulator): ...

The emulator's controls make failure paths testable: ``inject_fault("get_run", "status",
status=503)``, ``finish_run(run_id, "failed")``, ``stats()["rate_limited"]``.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, get_args

import pytest

from ._emulator import Emulator
from ._thread import EmulatorThread

__all__ = [
    "codegen_emulator_env",
    "codegen_emulator_options",
    "codegen_emulator_thread",
]

DEFAULT_OPTIONS: dict[str, Any] = {"time_scale": 0.01, "failure_rate": 0.0}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "codegen_emulator(**options): keyword arguments for the codegen_emulator fixtures "
        "(time_scale, failure_rate, status_style, rate_limit, max_runs, seed, ...)",
    )
    # The emulator serves on the loop its fixture ran on, so that loop must be the tests' own:
    # under pytest-asyncio's default fixture loop scope (the suite's, e.g. "session") a test
    # on its own loop would wait forever for a server whose loop is not running. The suite's
    # settings are known only now, so the fixture is made here.
    name = f"{__name__}.async_fixtures"
    if config.pluginmanager.get_plugin(name) is None:
        plugin = _async_fixtures(name, _test_loop_scope(config))
        if plugin is not None:
            config.pluginmanager.register(plugin, name)


@pytest.fixture
def codegen_emulator_options() -> dict[str, Any]:
    """Keyword arguments for the emulator fixtures; override to change the defaults."""
    return dict(DEFAULT_OPTIONS)


def _options(request: pytest.FixtureRequest, base: dict[str, Any]) -> dict[str, Any]:
    options = dict(base)
    for marker in reversed(list(request.node.iter_markers("codegen_emulator"))):
        options.update(marker.kwargs)
    return options


@pytest.fixture
def codegen_emulator_thread(
    request: pytest.FixtureRequest, codegen_emulator_options: dict[str, Any]
) -> Iterator[EmulatorThread]:
    """A started :class:`EmulatorThread`, stopped after the test."""
    with EmulatorThread(**_options(request, codegen_emulator_options)) as emulator:
        yield emulator


@pytest.fixture
def codegen_emulator_env(
    codegen_emulator_thread: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> EmulatorThread:
    """``codegen_emulator_thread`` with the ``CODEGEN_*`` variables pointing at it."""
    for name, value in codegen_emulator_thread.client_env().items():
        monkeypatch.setenv(name, value)
    return codegen_emulator_thread


_LoopScope = Literal["session", "package", "module", "class", "function"]


def _test_loop_scope(config: pytest.Config) -> _LoopScope:
    try:  # pytest-asyncio >= 0.26; before it, every test ran on its own loop
        scope = config.getini("asyncio_default_test_loop_scope")
    except ValueError:
        return "function"
    # pytest-asyncio has validated the value; anything else means its default.
    return scope if scope in get_args(_LoopScope) else "function"


def _async_fixtures(name: str, loop_scope: _LoopScope) -> types.ModuleType | None:
    """A plugin holding ``codegen_emulator`` on the tests' loop; None without pytest-asyncio."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - the async fixture needs pytest-asyncio
        return None

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def codegen_emulator(
        request: pytest.FixtureRequest, codegen_emulator_options: dict[str, Any]
    ) -> AsyncIterator[Emulator]:
        """A started :class:`Emulator` on the test's event loop, stopped after the test."""
        async with Emulator(**_options(request, codegen_emulator_options)) as emulator:
            yield emulator

    plugin = types.ModuleType(name)
    plugin.codegen_emulator = codegen_emulator  # type: ignore[attr-defined]
    return plugin
