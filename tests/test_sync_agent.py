"""``codegen_sync.Agent`` against the emulator: calls, iterators, threads, event loops, leaks.

Fork, Ctrl-C and interpreter exit are in ``test_sync_lifecycle.py``; the notebook in
``test_sync_notebook.py``.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest

from codegen_async import ENDPOINTS, Quota, RateLimits
from codegen_async.emulator import EmulatorThread
from codegen_sync import Agent, AgentRun, AgentRunLog, BadRequestError, NotFoundError, Page, User
from codegen_sync._portal import THREAD_NAME, get_portal
from codegen_sync._wrap import SyncIterator

TERMINAL = ("completed", "failed", "cancelled")


def route(operation: str) -> str:
    endpoint = ENDPOINTS[operation]
    return f"{endpoint.method} {endpoint.path}"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(time_scale=0.01, failure_rate=0.0) as emulator:
        yield emulator


@pytest.fixture
def agent(emu: EmulatorThread) -> Iterator[Agent]:
    emu.clear_faults()
    with Agent(**emu.client_kwargs()) as client:
        yield client


def emu_port(emu: EmulatorThread) -> int:
    return int(emu.base_url.rsplit(":", 1)[1])


def client_connections(emu: EmulatorThread) -> list[Any]:
    """This process's TCP connections to the emulator, client side."""
    port = emu_port(emu)
    return [
        c for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port
    ]


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


def wait_until(condition: Callable[[], bool], attempts: int = 500) -> bool:
    """Poll ``condition`` between short sleeps on the portal's loop (lets its tasks run)."""
    portal = get_portal()
    for _ in range(attempts):
        if condition():
            return True
        portal.call(asyncio.sleep(0.01))
    return condition()


# --- calls ---------------------------------------------------------------------------------
def test_calls_return_the_async_clients_models(agent: Agent, emu: EmulatorThread) -> None:
    me = agent.get_current_user()
    assert isinstance(me, User)
    assert me.id == emu.user_id
    page = agent.get_users(limit=5)
    assert isinstance(page, Page)
    assert len(page.items) == 5
    assert page.total >= 25
    assert all(isinstance(u, User) for u in page.items)
    assert agent.get_user(page.items[0].id).id == page.items[0].id


def test_run_and_wait(agent: Agent) -> None:
    run = agent.run("Fix the flaky test in tests/test_api.py")
    assert isinstance(run, AgentRun)
    assert agent.get_run(run.id).id == run.id
    done = agent.wait_for_run(run.id, timeout=30)
    assert done.status in TERMINAL


def test_typed_errors_reach_the_caller(agent: Agent) -> None:
    with pytest.raises(BadRequestError) as bad:
        agent.analyze_sandbox_logs(2)  # sandbox 2 has no logs
    assert bad.value.status_code == 400
    with pytest.raises(NotFoundError):
        agent.analyze_sandbox_logs(987654)
    # The traceback reaches from the caller into the coroutine that raised.
    frames = [frame.name for frame in _walk(bad.value.__traceback__)]
    assert "test_typed_errors_reach_the_caller" in frames
    assert "analyze_sandbox_logs" in frames


def _walk(tb: Any) -> Iterator[Any]:
    import traceback

    yield from traceback.extract_tb(tb)


def test_documented_workflow(agent: Agent) -> None:
    """The documentation's sandbox workflow, blocking."""
    analysis = agent.analyze_sandbox_logs(sandbox_id=1)
    result = agent.wait_for_run(analysis.agent_run_id, timeout=30)
    assert result.status in TERMINAL
    setup = agent.generate_setup_commands(repo_id=agent.get_repositories().items[0].id)
    assert agent.wait_for_run(setup.agent_run_id, timeout=30).status in TERMINAL


# --- iterators -----------------------------------------------------------------------------
def test_iter_users_walks_every_page_lazily(agent: Agent, emu: EmulatorThread) -> None:
    total = agent.get_users(limit=1).total
    emu.reset_stats()
    users = agent.iter_users(page_size=7)
    assert isinstance(users, SyncIterator)
    assert emu.stats()["requests"][route("get_users")] == 0  # nothing fetched yet
    first = next(users)
    assert isinstance(first, User)
    assert emu.stats()["requests"][route("get_users")] == 1  # one page, not all
    rest = list(users)
    assert len(rest) + 1 == total
    assert len({u.id for u in [first, *rest]}) == total
    assert emu.stats()["requests"][route("get_users")] == -(-total // 7)
    assert next(users, None) is None  # exhausted stays exhausted


def test_closing_an_iterator_closes_the_async_generator(agent: Agent) -> None:
    users = agent.iter_users(page_size=2)
    next(users)
    source = users._source
    assert source.ag_frame is not None  # suspended inside the async generator
    users.close()
    assert source.ag_frame is None
    assert next(users, None) is None
    users.close()  # idempotent


def test_iterator_as_context_manager(agent: Agent) -> None:
    with agent.iter_runs(page_size=1) as runs:
        for _ in runs:
            break
        source = runs._source
    assert source.ag_frame is None


def test_collected_iterator_closes_its_async_generator(agent: Agent) -> None:
    users = agent.iter_users(page_size=1)
    next(users)
    source = users._source
    del users
    gc.collect()
    assert wait_until(lambda: source.ag_frame is None)


def test_break_out_of_a_for_loop_closes(agent: Agent) -> None:
    seen = []
    for user in agent.iter_users(page_size=3):
        seen.append(user)
        break
    assert len(seen) == 1
    gc.collect()
    assert wait_until(lambda: not _open_async_generators())


def _open_async_generators() -> list[Any]:
    return [
        obj
        for obj in gc.get_objects()
        if type(obj).__name__ == "async_generator"
        and obj.ag_frame is not None
        and obj.ag_code.co_name == "iterate_pages"
    ]


def test_iter_run_logs_and_watch_run(agent: Agent, emu: EmulatorThread) -> None:
    run = agent.run("Write the changelog")
    states = list(agent.watch_run(run.id, timeout=30))
    assert states
    assert all(isinstance(s, AgentRun) for s in states)
    assert states[-1].status in TERMINAL
    logs = agent.iter_run_logs(run.id, page_size=2)
    assert isinstance(logs, SyncIterator)
    entries = list(logs)
    assert all(isinstance(e, AgentRunLog) for e in entries)
    assert len(entries) == agent.get_run_logs(run.id, limit=100).total_logs


def test_as_completed_yields_each_run(agent: Agent) -> None:
    ids = [agent.run(f"task {i}").id for i in range(3)]
    finished = list(agent.as_completed(ids, timeout=30))
    assert sorted(r.id for r in finished) == sorted(ids)
    assert all(r.status in TERMINAL for r in finished)


# --- threads and event loops -----------------------------------------------------------------
def test_many_threads_share_one_loop(emu: EmulatorThread) -> None:
    shared = Agent(**emu.client_kwargs())

    def work(i: int) -> list[int]:
        ids = []
        with Agent(**emu.client_kwargs()) as own:
            for _ in range(4):
                ids.append(shared.get_current_user().id)
                ids.append(own.get_user(emu.user_id).id)
                ids.append(len(shared.get_users(skip=i, limit=2).items))
        return ids

    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(work, range(16)))
    finally:
        shared.close()
    assert len(results) == 16
    for ids in results:
        assert ids == [emu.user_id, emu.user_id, 2] * 4
    assert len(loop_threads()) == 1


def test_clients_share_rate_limits(emu: EmulatorThread) -> None:
    """Two clients on one token keep to one quota: the second waits for the first's slots."""
    limits = RateLimits.documented(scale=0.01).replace(get_current_user=Quota(4, 3.0))
    kwargs = emu.client_kwargs(rate_limits=limits)
    with Agent(**kwargs) as first, Agent(**kwargs) as second:
        for _ in range(4):
            first.get_current_user()
        assert first.stats.rate_limit_wait_seconds == 0
        done = threading.Event()
        threading.Thread(target=lambda: (second.get_current_user(), done.set())).start()
        assert done.wait(30)
        assert second.stats.rate_limit_wait_seconds > 0


async def test_works_inside_a_running_event_loop(emu: EmulatorThread) -> None:
    """A blocking call from a coroutine (a notebook cell, a framework's sync callback)."""
    assert asyncio.get_running_loop().is_running()
    pending = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="running"):
        asyncio.run(pending)  # what the wrapper exists to avoid
    pending.close()
    with Agent(**emu.client_kwargs()) as agent:
        assert agent.get_current_user().id == emu.user_id
        assert len(list(agent.iter_users(page_size=50))) >= 25

        def sync_helper() -> int:
            return agent.get_users(limit=3).total

        assert await asyncio.get_running_loop().run_in_executor(None, sync_helper) >= 25
        assert sync_helper() >= 25


def test_call_from_the_loop_thread_raises(agent: Agent) -> None:
    agent.get_current_user()

    async def inside() -> Any:
        return agent.get_current_user()

    with pytest.raises(RuntimeError, match="own event-loop thread"):
        get_portal().call(inside())
    assert agent.get_current_user()  # still usable


def test_callbacks_run_on_the_thread_running_the_loop(agent: Agent) -> None:
    """A plain callback works, on the calling thread (which runs the loop when it is idle)
    or the loop thread; one that makes a blocking call gets a clear error."""
    run = agent.run("Callback target")
    seen: list[AgentRun] = []
    threads: set[str] = set()

    def record(update: AgentRun) -> None:
        seen.append(update)
        threads.add(threading.current_thread().name)

    done = agent.wait_for_runs([run.id], on_update=record, timeout=30)
    assert done[run.id].status in TERMINAL
    assert seen
    assert len(threads) == 1
    assert threads <= {threading.current_thread().name, THREAD_NAME}
    other = agent.run("Callback target 2")
    with pytest.raises(RuntimeError, match="own event-loop thread"):
        agent.wait_for_runs([other.id], on_update=lambda u: agent.get_run(u.id), timeout=30)
    assert agent.get_run(other.id).id == other.id  # nothing is stuck


# --- closing and leaks ---------------------------------------------------------------------
def test_close_leaves_no_socket_and_no_thread(emu: EmulatorThread) -> None:
    Agent(**emu.client_kwargs()).close()  # the loop thread exists from here on
    threads_before = set(threading.enumerate())
    assert not client_connections(emu)
    with Agent(**emu.client_kwargs()) as agent:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: agent.get_users(limit=2), range(8)))
        assert client_connections(emu)  # keep-alive connections while open
    assert not client_connections(emu)
    assert set(threading.enumerate()) == threads_before
    assert len(loop_threads()) == 1


def test_dropped_client_is_closed_with_a_resource_warning(emu: EmulatorThread) -> None:
    agent = Agent(**emu.client_kwargs())
    agent.get_current_user()
    assert client_connections(emu)
    with pytest.warns(ResourceWarning, match="unclosed Agent"):
        del agent  # the last reference: collected at once
    assert wait_until(lambda: not client_connections(emu))


def test_unused_dropped_client_warns_nothing(emu: EmulatorThread) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent = Agent(**emu.client_kwargs())
        del agent
        gc.collect()
