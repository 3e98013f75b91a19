"""The blocking client's surface: derived from AsyncAgent, re-exports, stub and typing.

Nothing here makes a request: these tests compare classes, signatures and files, and run
mypy on small user scripts.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import subprocess
import sys
import textwrap
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import codegen_async
import codegen_sync
from codegen_async import AsyncAgent
from codegen_sync import Agent, _rules
from codegen_sync._annotations import names_in, sync_annotation
from codegen_sync._rules import Twin, public_members, returns_own_class, wrapped_members
from codegen_sync._stubgen import STUB_PATH, render, render_raw
from codegen_sync._wrap import SyncClient, SyncIterator

REPO = Path(__file__).resolve().parent.parent


def _async_methods() -> dict[str, typing.Any]:
    return {
        name: member
        for name, member in public_members(AsyncAgent).items()
        if inspect.isfunction(member) and name != "aclose"
    }


def _returns_async_iterator(fn: typing.Any) -> bool:
    if inspect.isasyncgenfunction(fn):
        return True
    returns = inspect.signature(fn).return_annotation
    return isinstance(returns, str) and returns.startswith("AsyncIterator[")


# --- every async method has its blocking twin -------------------------------------------------
def test_every_public_member_of_async_agent_has_a_twin() -> None:
    async_names = set(public_members(AsyncAgent)) - {"aclose"}
    sync_names = set(public_members(Agent)) - {"close"}
    assert async_names, "AsyncAgent has no public members?"
    assert async_names == sync_names
    assert "close" in vars(SyncClient)
    # The methods named in the contract, and those another helper is adding.
    for name in ("run", "get_run", "get_users", "iter_users", "iter_runs", "iter_run_logs"):
        assert name in sync_names


@pytest.mark.parametrize("name", sorted(_async_methods()))
def test_twin_has_same_signature_docstring_and_wrapped(name: str) -> None:
    async_fn = getattr(AsyncAgent, name)
    sync_fn = getattr(Agent, name)
    assert not inspect.iscoroutinefunction(sync_fn)
    assert not inspect.isasyncgenfunction(sync_fn)
    assert sync_fn.__wrapped__ is async_fn
    assert sync_fn.__doc__ == async_fn.__doc__
    assert sync_fn.__name__ == name
    assert sync_fn.__qualname__ == f"Agent.{name}"
    async_sig = inspect.signature(async_fn)
    sync_sig = inspect.signature(sync_fn)
    assert list(sync_sig.parameters.values()) == list(async_sig.parameters.values())
    expected_return = async_sig.return_annotation
    if returns_own_class(async_fn):  # with_options: a blocking client, not an async one
        expected_return = "Agent"
    elif isinstance(expected_return, str):
        expected_return = sync_annotation(expected_return)
    assert sync_sig.return_annotation == expected_return
    # The bound method drops self, like the async one.
    agent_sig = inspect.signature(getattr(Agent, name).__get__(object.__new__(Agent)))
    assert "self" not in agent_sig.parameters


@pytest.mark.parametrize(
    "name", sorted(n for n, fn in _async_methods().items() if _returns_async_iterator(fn))
)
def test_async_iterator_methods_return_iterators(name: str) -> None:
    hints = typing.get_type_hints(getattr(Agent, name))
    assert typing.get_origin(hints["return"]) is Iterator
    async_hints = typing.get_type_hints(getattr(AsyncAgent, name))
    assert typing.get_origin(async_hints["return"]) in (AsyncIterator, typing.AsyncGenerator)
    assert typing.get_args(hints["return"])[0] == typing.get_args(async_hints["return"])[0]


def test_iterator_methods_include_the_documented_ones() -> None:
    iterators = {n for n, fn in _async_methods().items() if _returns_async_iterator(fn)}
    assert {"iter_users", "iter_runs", "iter_run_logs", "iter_organizations"} <= iterators


def test_type_hints_of_twins_evaluate() -> None:
    hints = typing.get_type_hints(Agent.get_users)
    assert hints["return"] == codegen_async.Page[codegen_async.User]


def test_constructor_has_async_agent_parameters() -> None:
    async_params = list(inspect.signature(AsyncAgent).parameters.values())
    sync_params = list(inspect.signature(Agent).parameters.values())
    assert sync_params == async_params
    assert [p.name for p in sync_params[:2]] == ["token", "org_id"]
    assert "Args:" in (Agent.__doc__ or "") and "base_url" in (Agent.__doc__ or "")


def test_properties_are_forwarded() -> None:
    props = {n for n, m in public_members(AsyncAgent).items() if isinstance(m, property)}
    assert {"org_id", "base_url", "stats", "rate_limits"} <= props
    agent = Agent("tok", 7, base_url="http://127.0.0.1:9")
    try:
        for name in props:
            assert isinstance(vars(Agent)[name], property)
            assert vars(Agent)[name].__doc__ == vars(AsyncAgent)[name].__doc__
        assert agent.org_id == 7
        assert agent.base_url == "http://127.0.0.1:9"
        assert agent.stats.requests == 0
        assert repr(agent).startswith("Agent(")
        assert "tok" not in repr(agent)
    finally:
        agent.close()


def test_settings_are_checked_in_the_constructor() -> None:
    with pytest.raises(codegen_sync.ConfigurationError, match="no API token"):
        Agent()
    with pytest.raises(TypeError):
        Agent("tok", 1, unknown_option=True)  # type: ignore[call-arg]


def test_wrong_arguments_raise_in_the_caller_without_a_request() -> None:
    with Agent("tok", 1, base_url="http://127.0.0.1:9") as agent:
        with pytest.raises(TypeError):
            agent.get_run()  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="limit"):
            agent.get_users(limit=1000)
        assert agent.stats.requests == 0


def test_closed_client_refuses_calls() -> None:
    agent = Agent("tok", 1, base_url="http://127.0.0.1:9")
    agent.close()
    agent.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        agent.get_run(1)


# --- derivation is mechanical ----------------------------------------------------------------
class _Toy:
    """An async client with one of each kind of member."""

    def __init__(self, base: int = 0, *, label: str = "toy") -> None:
        self.base = base
        self.label = label
        self.closed = False
        self.events: list[str] = []

    async def aclose(self) -> None:
        self.closed = True

    @property
    def doubled(self) -> int:
        """Twice the base."""
        return self.base * 2

    async def add(self, x: int, *, y: int = 1) -> int:
        """Add to the base."""
        return self.base + x + y

    async def count(self, n: int) -> AsyncIterator[int]:
        """Count from the base."""
        for i in range(n):
            yield self.base + i

    def count_lazily(self, n: int) -> AsyncIterator[int]:
        """Count, built by a plain method."""
        return self.count(n)

    async def fail(self) -> None:
        """Raise."""
        raise LookupError("from the loop")

    def session(self, name: str) -> contextlib.AbstractAsyncContextManager[str]:
        """An async context manager."""

        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[str]:
            self.events.append(f"open {name}")
            try:
                yield name.upper()
            finally:
                self.events.append(f"close {name}")

        return opened()


class _ToySync(SyncClient, wraps=_Toy):
    """Blocking toy."""


def test_a_method_added_to_the_async_class_appears_on_the_sync_one() -> None:
    class Grown(_Toy):
        async def extra(self, word: str) -> str:
            """Added later."""
            return word.upper()

    class GrownSync(SyncClient, wraps=Grown):
        pass

    assert not hasattr(_ToySync, "extra")
    with GrownSync(3) as toy:
        assert toy.extra("hi") == "HI"
        assert GrownSync.extra.__doc__ == "Added later."
        assert toy.add(1, y=2) == 6


def test_toy_twin_behaves() -> None:
    with _ToySync(10, label="x") as toy:
        assert toy.doubled == 20
        assert toy.add(1) == 12
        counted = toy.count(3)
        assert isinstance(counted, SyncIterator)
        assert list(counted) == [10, 11, 12]
        assert list(toy.count_lazily(2)) == [10, 11]
        with pytest.raises(LookupError, match="from the loop"):
            toy.fail()
        client = toy._state.client
        with toy.session("s1") as value:
            assert value == "S1"
            assert client.events == ["open s1"]
        assert client.events == ["open s1", "close s1"]
        with pytest.raises(KeyError), toy.session("s2"):
            raise KeyError("inside")
        assert client.events[-1] == "close s2"
    assert client.closed
    assert (
        typing.get_type_hints(_ToySync.session)["return"]
        == (contextlib.AbstractContextManager[str])
    )


def test_stubgen_renders_any_derived_class() -> None:
    text = render_raw(_ToySync)
    assert "def add(self, x: int, *, y: int = 1) -> int:" in text
    assert "def count(self, n: int) -> Iterator[int]:" in text
    assert "def doubled(self) -> int:" in text
    assert "from collections.abc import Iterator" in text
    assert "def session(self, name: str) -> AbstractContextManager[str]:" in text


def test_wrapper_and_stub_read_one_rules_table(monkeypatch: pytest.MonkeyPatch) -> None:
    class Kinds(_Toy):
        LIMIT = 3

        @staticmethod
        def helper() -> int:
            return 1

    twins = {name: twin for name, _, twin in wrapped_members(Kinds)}
    assert twins["aclose"] is Twin.REPLACED
    assert twins["doubled"] is Twin.PROPERTY
    assert twins["helper"] is Twin.OMITTED
    assert twins["count"] is Twin.ITERATE
    assert twins["add"] is Twin.CALL
    assert twins["session"] is Twin.INVOKE and twins["count_lazily"] is Twin.INVOKE
    assert twins["LIMIT"] is Twin.CONSTANT
    # One table: a rule changed there changes the wrapper and the stub alike.
    monkeypatch.setattr(_rules, "REPLACED", frozenset({"aclose", "fail"}))

    class KindsSync(SyncClient, wraps=Kinds):
        pass

    text = render_raw(KindsSync)
    assert not hasattr(KindsSync, "fail") and "def fail(" not in text
    assert not hasattr(KindsSync, "helper") and "def helper(" not in text
    assert KindsSync.LIMIT == 3 and "    LIMIT: int\n" in text
    assert hasattr(KindsSync, "add") and "def add(" in text
    assert "def aclose(" not in text and "def close(self) -> None:" in text


def test_stub_imports_public_names_only() -> None:
    tree = ast.parse(STUB_PATH.read_text(encoding="utf-8"))
    imported = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imported
    for node in imported:
        modules = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
        for module in modules:
            assert not any(part.startswith("_") for part in module.split(".")), module
    text = STUB_PATH.read_text(encoding="utf-8")
    assert "TimeoutArg" not in text  # a private alias of _client, written out instead
    assert "timeout: float | Timeout | NotGiven | None = ..." in text


# --- annotations -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AsyncIterator[User]", "Iterator[User]"),
        ("collections.abc.AsyncIterator[User]", "Iterator[User]"),
        ("AsyncIterable[int]", "Iterator[int]"),
        ("AsyncGenerator[AgentRun, None]", "Iterator[AgentRun]"),
        ("AbstractAsyncContextManager[Agent]", "AbstractContextManager[Agent]"),
        ("Awaitable[Page[User]]", "Page[User]"),
        ("Coroutine[Any, Any, dict[str, Any]]", "dict[str, Any]"),
        ("AsyncIterator[User] | None", "Iterator[User] | None"),
        ("Page[User]", "Page[User]"),
        ("Literal['a', \"b\"]", "Literal['a', \"b\"]"),
    ],
)
def test_sync_annotation(text: str, expected: str) -> None:
    assert sync_annotation(text) == expected


def test_names_in() -> None:
    assert names_in("Mapping[str, Any] | None") == {"Mapping", "str", "Any"}
    assert names_in("aiohttp.ClientSession | None") == {"aiohttp"}
    assert names_in("Literal['codegen']") == {"Literal"}


# --- re-exports ------------------------------------------------------------------------------
def test_codegen_sync_reexports_every_public_name_of_codegen_async() -> None:
    assert "Agent" in codegen_sync.__all__
    assert set(codegen_async.__all__) <= set(codegen_sync.__all__)
    assert len(codegen_sync.__all__) == len(set(codegen_sync.__all__))
    for name in codegen_sync.__all__:
        assert hasattr(codegen_sync, name), name
    for name in codegen_async.__all__:
        assert getattr(codegen_sync, name) is getattr(codegen_async, name)
    modules = {n for n in dir(codegen_sync) if inspect.ismodule(getattr(codegen_sync, n))}
    public = {n for n in dir(codegen_sync) if not n.startswith("_")} - modules
    assert public == set(codegen_sync.__all__) - {"__version__"}
    assert codegen_sync.CodegenError is codegen_async.CodegenError
    assert codegen_sync.RateLimits is codegen_async.RateLimits


def test_package_is_typed() -> None:
    assert (REPO / "codegen_sync" / "py.typed").exists()


# --- the generated stub and mypy -------------------------------------------------------------
def test_checked_in_stub_is_current() -> None:
    assert STUB_PATH.read_text(encoding="utf-8") == render(), (
        "codegen_sync/_agent.pyi is stale: run `python -m codegen_sync._stubgen`"
    )


def test_stubgen_check_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "codegen_sync._stubgen", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


GOOD_SCRIPT = """
    from codegen_sync import Agent, AgentRun, NotFoundError, Page, User


    def main() -> None:
        with Agent() as agent:
            page = agent.get_users()
            reveal_type(page)
            role = page.items[0].role
            reveal_type(role)
            for user in agent.iter_users():
                reveal_type(user)
            run: AgentRun = agent.get_run(1)
            reveal_type(agent.get_run)
            logs = agent.iter_run_logs(run.id)
            reveal_type(logs)
            try:
                agent.get_user(5)
            except NotFoundError as exc:
                print(exc.status_code)
            first: Page[User] = agent.get_users(limit=1)
            print(first.total, agent.org_id, agent.stats.requests)
"""

BAD_SCRIPT = """
    from codegen_sync import Agent


    def main() -> None:
        agent = Agent()
        names: list[str] = agent.get_users().items
        agent.get_run("1")
        agent.iter_users().items
"""


def test_mypy_strict_sees_blocking_types(tmp_path: Path) -> None:
    """A user's script type-checks under --strict; type errors in another are caught."""
    good = tmp_path / "good.py"
    bad = tmp_path / "bad.py"
    good.write_text(textwrap.dedent(GOOD_SCRIPT), encoding="utf-8")
    bad.write_text(textwrap.dedent(BAD_SCRIPT), encoding="utf-8")
    config = tmp_path / "mypy.ini"
    # The packages under test are followed silently: this checks what a user sees, whatever
    # work in progress elsewhere in the tree might report.
    config.write_text(
        "[mypy]\nstrict = True\n"
        "[mypy-codegen_async.*]\nfollow_imports = silent\n"
        "[mypy-codegen_sync.*]\nfollow_imports = silent\n",
        encoding="utf-8",
    )
    env = {**os.environ, "MYPYPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "--show-error-codes",
            good.name,
            bad.name,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    out = proc.stdout
    good_lines = [line for line in out.splitlines() if line.startswith("good.py:")]
    bad_lines = [line for line in out.splitlines() if line.startswith("bad.py:")]
    assert not [line for line in good_lines if ": error:" in line], out
    revealed = [line.split('Revealed type is "')[1].rstrip('"') for line in good_lines]
    assert len(revealed) == 5, out
    assert revealed[0] == "codegen_async.models.Page[codegen_async.models.User]"
    assert revealed[2] == "codegen_async.models.User"
    # A blocking signature: the same parameters, returning the model (not a coroutine).
    assert revealed[3].startswith("def (agent_run_id: int, *, org_id: int | None =")
    assert revealed[3].endswith("-> codegen_async.models.AgentRun")
    assert revealed[4] == "typing.Iterator[codegen_async.models.AgentRunLog]"
    assert "Any" not in revealed[1]
    errors = [line for line in bad_lines if ": error:" in line]
    assert len(errors) == 3, out
    assert '"list[User]", variable has type "list[str]"' in errors[0]
    assert 'Argument 1 to "get_run" of "Agent" has incompatible type "str"' in errors[1]
    assert '"Iterator[User]" has no attribute "items"' in errors[2]
    assert proc.returncode == 1
