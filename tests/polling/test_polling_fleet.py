"""Fleet-wide run watching (issue 16) against a real redis-server and the emulator.

Several clients on one token stand for several processes: each has its own
``FleetWatcher`` (its own peer id and lease attempts), sharing only Redis, as processes
do. The failover test uses a real second process, killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from codegen_async import AsyncAgent  # noqa: E402
from codegen_async._converter import unstructure  # noqa: E402
from codegen_async._polling import FleetWatcher  # noqa: E402
from codegen_async.emulator import Emulator  # noqa: E402
from tests.test_ratelimit_redis import REDIS_SERVER, _free_port, _start_redis  # noqa: E402

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]

SCALE = 0.01
LONG = (10_000.0, 10_000.0)  # runs end only when a test finishes them
RUN_ROUTES = (
    "GET /v1/organizations/{org_id}/agent/run/{agent_run_id}",
    "GET /v1/organizations/{org_id}/agent/runs",
)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, port = _start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(time_scale=SCALE, run_duration=LONG, seed=3) as emulator:
        yield emulator


def seed_runs(emu: Emulator, count: int) -> list[int]:
    now = time.time()
    return [
        emu.state.create_run(
            org_id=emu.org_id,
            user_id=emu.user_id,
            kind="run",
            operation="run",
            source_type="API",
            prompt=f"ticket {i}",
            now=now,
        ).id
        for i in range(count)
    ]


def run_requests(emu: Emulator) -> int:
    requests = emu.stats()["requests"]
    return sum(requests.get(route, 0) for route in RUN_ROUTES)


def watcher(agent: AsyncAgent) -> FleetWatcher:
    found = agent._watcher()
    assert isinstance(found, FleetWatcher)
    return found


async def until(condition: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def until_registered(emu: Emulator, agents: list[AsyncAgent], ids: list[int]) -> None:
    """Until each client's fleet has registered its waits on ``ids`` (those it waits on).

    A process registering a run after the leader published its final status reads the run
    once to confirm it (by design); a fixed sleep let that happen on a loaded CI machine.
    """

    def done() -> bool:
        for agent in agents:
            since = watcher(agent)._since
            mine = [(emu.org_id, i) for i in ids if (emu.org_id, i) in since]
            if not mine or any(since[key] is None for key in mine):
                return False
        return True

    await until(done)


async def test_processes_share_one_poller(emu: Emulator, redis_url: str) -> None:
    agents = [emu.client(rate_limit_backend=redis_url) for _ in range(4)]
    try:
        ids = seed_runs(emu, 40)
        waits = [
            asyncio.ensure_future(agent.wait_for_runs(ids[i * 5 : i * 5 + 20]))
            for i, agent in enumerate(agents)
        ]
        await until(lambda: sum(watcher(a).leading for a in agents) == 1)
        await until_registered(emu, agents, ids)
        for run_id in ids:
            emu.finish_run(run_id, "completed")
        results = await asyncio.wait_for(asyncio.gather(*waits), 30)
        for i, runs in enumerate(results):
            assert list(runs) == ids[i * 5 : i * 5 + 20]
            assert all(run.status == "completed" for run in runs.values())
        # Only the leader polled: the others sent no request at all.
        polled = [agent.stats.requests for agent in agents]
        assert sorted(polled)[:3] == [0, 0, 0], polled
        assert emu.stats()["rate_limited"] == 0
    finally:
        for agent in agents:
            await agent.aclose()


async def test_a_late_wait_reads_the_stored_status(emu: Emulator, redis_url: str) -> None:
    [run_id] = seed_runs(emu, 1)
    async with emu.client(rate_limit_backend=redis_url) as first:
        wait = asyncio.ensure_future(first.wait_for_run(run_id))
        await until(lambda: watcher(first).leading)
        emu.finish_run(run_id, "failed")
        assert (await asyncio.wait_for(wait, 20)).status == "failed"
    before = run_requests(emu)
    async with (
        emu.client(rate_limit_backend=redis_url) as late,
        emu.client(rate_limit_backend=redis_url) as keeper,
    ):
        # Another process leads and keeps the lease; the late wait learns from Redis that
        # the run ended, and checks that with one read of its own (it may have been resumed
        # since): the fleet does not poll it again.
        other = seed_runs(emu, 1)
        hold = asyncio.ensure_future(keeper.wait_for_run(other[0]))
        await until(lambda: watcher(keeper).leading)
        run = await asyncio.wait_for(late.wait_for_run(run_id), 20)
        assert run.status == "failed" and run.status.raw == "ERROR"
        assert late.stats.requests == 1
        emu.finish_run(other[0], "completed")
        await asyncio.wait_for(hold, 20)
    # The late wait's one check (asserted above) plus the keeper's polls of its own run,
    # which a loaded machine makes more of (5 seen in a loaded CI lane): no fixed count.
    assert run_requests(emu) - before >= 2


async def test_opt_out_and_memory_backend_poll_on_their_own(emu: Emulator, redis_url: str) -> None:
    async with emu.client(rate_limit_backend=redis_url, fleet_polling=False) as agent:
        assert agent._watcher() is agent._poller()
    async with emu.client() as agent:
        assert agent._watcher() is agent._poller()
    with pytest.raises(TypeError):
        emu.client(fleet_polling="yes")


async def test_redis_down_falls_back_to_the_own_poller_and_says_so_once(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens there
    ids = seed_runs(emu, 3)
    caplog.set_level(logging.WARNING, logger="codegen_async.polling")
    async with emu.client(rate_limit_backend=url) as agent:
        wait = asyncio.ensure_future(agent.wait_for_runs(ids))
        await until(lambda: watcher(agent).local)
        for run_id in ids:
            emu.finish_run(run_id, "completed")
        runs = await asyncio.wait_for(wait, 30)
        assert [run.status for run in runs.values()] == ["completed"] * 3
    fleet_warnings = [r for r in caplog.records if "fleet run watching" in r.getMessage()]
    assert len(fleet_warnings) == 1
    assert "polls its own runs" in fleet_warnings[0].getMessage()


LEADER_SCRIPT = """
import asyncio, sys
from codegen_async import AsyncAgent, RateLimits

async def main() -> None:
    base_url, token, org_id, redis_url, run_ids = sys.argv[1:6]
    agent = AsyncAgent(
        token, int(org_id), base_url=base_url, rate_limit_backend=redis_url,
        rate_limits=RateLimits.documented(scale=0.01),
    )
    wait = asyncio.ensure_future(agent.wait_for_runs([int(i) for i in run_ids.split(",")]))
    while not agent._watcher().leading:
        await asyncio.sleep(0.01)
    print("leading", flush=True)
    await wait

asyncio.run(main())
"""


async def test_leader_killed_another_process_takes_over(
    emu: Emulator, redis_url: str, tmp_path: Path
) -> None:
    ids = seed_runs(emu, 10)
    script = tmp_path / "leader.py"
    script.write_text(LEADER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    leader = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        emu.base_url,
        emu.token,
        str(emu.org_id),
        redis_url,
        ",".join(map(str, ids)),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert leader.stdout is not None
        line = await asyncio.wait_for(leader.stdout.readline(), 60)
        assert line.strip() == b"leading"
        async with emu.client(rate_limit_backend=redis_url) as follower:
            wait = asyncio.ensure_future(follower.wait_for_runs(ids))
            await asyncio.sleep(0.3)
            assert not watcher(follower).leading
            for run_id in ids[:5]:
                emu.finish_run(run_id, "completed")
            await asyncio.sleep(0.3)
            leader.send_signal(signal.SIGKILL)  # mid-sweep: no chance to give the lease back
            await leader.wait()
            killed = time.monotonic()
            await until(lambda: watcher(follower).leading, 30)
            takeover = time.monotonic() - killed
            for run_id in ids[5:]:
                emu.finish_run(run_id, "completed")
            runs = await asyncio.wait_for(wait, 30)
            assert list(runs) == ids
            assert all(run.status == "completed" for run in runs.values())
            lease = watcher(follower)._settings.lease
            # Within a couple of lease periods (plus slack for a loaded machine).
            assert takeover < 2 * lease + 2, f"{takeover:.2f}s to take over"
    finally:
        if leader.returncode is None:
            leader.kill()
            await leader.wait()


async def test_a_failure_inside_the_fleet_loop_never_leaves_a_wait_hanging(
    emu: Emulator, redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codegen_async.polling")

    async def broken(self: FleetWatcher, redis: Any, *, refresh_all: bool) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(FleetWatcher, "_register", broken)
    ids = seed_runs(emu, 2)
    async with emu.client(rate_limit_backend=redis_url) as agent:
        wait = asyncio.ensure_future(agent.wait_for_runs(ids))
        await until(lambda: watcher(agent).local)
        for run_id in ids:
            emu.finish_run(run_id, "cancelled")
        runs = await asyncio.wait_for(wait, 20)
    assert [run.status for run in runs.values()] == ["cancelled", "cancelled"]
    # A bug is not blamed on Redis (the warning said "Redis is unreachable (KeyError)").
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "unreachable" in m], messages
    assert any("fleet run watching: it failed (KeyError)" in m for m in messages), messages


async def test_a_wait_after_resume_is_not_answered_by_the_old_final_status(
    emu: Emulator, redis_url: str
) -> None:
    [run_id] = seed_runs(emu, 1)
    async with (
        emu.client(rate_limit_backend=redis_url) as first,
        emu.client(rate_limit_backend=redis_url) as other,
    ):
        wait = asyncio.ensure_future(first.wait_for_run(run_id))
        await until(lambda: watcher(first).leading)
        emu.finish_run(run_id, "completed")
        assert (await asyncio.wait_for(wait, 20)).status == "completed"
        # Resumed here, and in another process: neither may answer from the old status.
        for resumer in (first, other):
            assert (await resumer.resume_run(run_id, "go on")).status == "running"
            waits = [asyncio.ensure_future(a.wait_for_run(run_id)) for a in (first, other)]
            await asyncio.sleep(1.0)
            assert not any(w.done() for w in waits), [w.result().status for w in waits]
            emu.finish_run(run_id, "failed")
            for w in waits:
                assert (await asyncio.wait_for(w, 20)).status == "failed"


async def first_status(agent: AsyncAgent, run_id: int) -> str:
    async def first() -> str:
        async for run in agent.watch_run(run_id):
            return str(run.status)
        raise AssertionError("watch_run ended without a status")

    return await asyncio.wait_for(first(), 10)


async def test_watch_run_gets_the_current_status_first_in_every_process(
    emu: Emulator, redis_url: str
) -> None:
    a, x = seed_runs(emu, 2)
    async with (
        emu.client(rate_limit_backend=redis_url) as leader,
        emu.client(rate_limit_backend=redis_url) as follower,
    ):
        hold = asyncio.ensure_future(leader.wait_for_run(a))
        await until(lambda: watcher(leader).leading)
        waiting = asyncio.ensure_future(follower.wait_for_run(x))  # the leader polls x
        await asyncio.sleep(0.5)
        # The leader remembers statuses only of the runs it waits on itself.
        assert set(watcher(leader)._seen) <= set(watcher(leader)._subs)
        # x is already watched (and its status known) in both processes.
        assert await first_status(follower, x) == "running"
        assert await first_status(leader, x) == "running"
        assert await first_status(leader, a) == "running"
        updates: list[str] = []

        async def drain() -> None:
            async for _run in follower.as_completed(
                [x], on_update=lambda run: updates.append(str(run.status))
            ):
                pass

        done = asyncio.ensure_future(drain())
        await until(lambda: bool(updates), 10)
        assert updates[0] == "running"
        emu.finish_run(a, "completed")
        emu.finish_run(x, "completed")
        await asyncio.wait_for(asyncio.gather(hold, waiting, done), 20)


POISON = {
    "stream_name_not_utf8": lambda r, base, key: r.xadd(base + "updates", {"k": b"\xff", "v": "!"}),
    "stream_status_not_utf8": lambda r, base, key: r.xadd(
        base + "updates", {"k": key, "v": b"\xff"}
    ),
    "stream_status_deep_json": lambda r, base, key: r.xadd(
        base + "updates", {"k": key, "v": "[" * 100_000}
    ),
    "stream_status_wrong_shape": lambda r, base, key: r.xadd(
        base + "updates", {"k": key, "v": "5"}
    ),
    "stored_status_not_utf8": lambda r, base, key: r.set(base + "last:" + key, b"\xff"),
    "stored_status_deep_json": lambda r, base, key: r.set(base + "last:" + key, "[" * 100_000),
    "watch_member_not_utf8": lambda r, base, key: r.zadd(base + "watch", {b"\xff\xfe": 1e20}),
    # A negative id made the leader's poll raise ValueError, which ended all of its waits.
    "watch_member_negative_id": lambda r, base, key: r.zadd(base + "watch", {"-1:-5": 1e20}),
}


@pytest.mark.parametrize("case", sorted(POISON))
async def test_unreadable_data_in_redis_is_skipped_not_taken_for_a_redis_failure(
    emu: Emulator, redis_url: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="codegen_async.polling")
    ids = seed_runs(emu, 4)
    async with (
        emu.client(rate_limit_backend=redis_url) as a,
        emu.client(rate_limit_backend=redis_url) as b,
        emu.client(rate_limit_backend=redis_url) as c,
    ):
        wa = asyncio.ensure_future(a.wait_for_runs(ids[:2]))
        await until(lambda: watcher(a).leading)
        wb = asyncio.ensure_future(b.wait_for_runs(ids[1:3]))
        await asyncio.sleep(0.5)
        client = redis.Redis.from_url(redis_url)
        try:
            POISON[case](client, watcher(a)._lease_key[: -len("lease")], f"{emu.org_id}:{ids[2]}")
        finally:
            client.close()
        wc = asyncio.ensure_future(c.wait_for_run(ids[2]))  # reads the stored status
        await asyncio.sleep(1.0)
        wd = asyncio.ensure_future(c.wait_for_run(ids[3]))  # a wait started afterwards
        await asyncio.sleep(0.5)
        assert not any(watcher(x).local for x in (a, b, c))
        assert watcher(a).leading
        for run_id in ids:
            emu.finish_run(run_id, "completed")
        await asyncio.wait_for(asyncio.gather(wa, wb, wc, wd), 20)
        assert not any(watcher(x).local for x in (a, b, c))
    messages = [r.getMessage() for r in caplog.records if "fleet run watching" in r.getMessage()]
    assert not [m for m in messages if "unreachable" in m or "failed" in m], messages
    assert b.stats.requests <= 2 and c.stats.requests <= 2  # followers stayed followers
    if case.startswith("watch"):
        client = redis.Redis.from_url(redis_url)
        try:
            assert not [m for k in client.scan_iter("*:watch") for m in client.zrange(k, 0, -1)]
        finally:
            client.close()


async def test_a_stored_status_of_another_run_never_ends_a_wait(
    emu: Emulator, redis_url: str
) -> None:
    ids = seed_runs(emu, 2)
    async with (
        emu.client(rate_limit_backend=redis_url) as leader,
        emu.client(rate_limit_backend=redis_url) as follower,
    ):
        hold = asyncio.ensure_future(leader.wait_for_run(ids[0]))
        await until(lambda: watcher(leader).leading)
        wait = asyncio.ensure_future(follower.wait_for_run(ids[1]))
        key = (emu.org_id, ids[1])
        await until(lambda: watcher(follower)._since.get(key) is not None)
        # Another program stores a finished run of another id as this run's status, and
        # names this run in the stream: the wait must not end with that run.
        other = await follower.get_run(ids[0])
        stored = {**unstructure(other), "status": "COMPLETE"}
        base_key = watcher(leader)._lease_key[: -len("lease")]
        client = redis.Redis.from_url(redis_url)
        try:
            client.set(f"{base_key}last:{emu.org_id}:{ids[1]}", json.dumps(stored))
            client.xadd(base_key + "updates", {"k": f"{emu.org_id}:{ids[1]}"})
        finally:
            client.close()
        await asyncio.sleep(1.0)
        assert not wait.done()
        for run_id in ids:
            emu.finish_run(run_id, "failed")
        run = await asyncio.wait_for(wait, 20)
        assert (run.id, run.status) == (ids[1], "failed")
        await asyncio.wait_for(hold, 20)


async def test_the_fleet_keys_expire_and_the_stream_holds_no_runs(
    emu: Emulator, redis_url: str
) -> None:
    ids = seed_runs(emu, 40)
    async with (
        emu.client(rate_limit_backend=redis_url) as a,
        emu.client(rate_limit_backend=redis_url) as b,
    ):
        waits = [asyncio.ensure_future(a.wait_for_runs(ids[:30]))]
        await until(lambda: watcher(a).leading)
        waits.append(asyncio.ensure_future(b.wait_for_runs(ids[10:])))
        await asyncio.sleep(0.5)
        for run_id in ids:
            emu.finish_run(run_id, "completed", result="Changed files and rationale. " * 700)
        for runs in await asyncio.wait_for(asyncio.gather(*waits), 30):
            assert all(len(run.result or "") > 10_000 for run in runs.values())
        ttl_ms = watcher(a)._settings.ttl * 1000
        stream, watch = watcher(a)._stream_key, watcher(a)._lease_key[: -len("lease")] + "watch"
    client = redis.Redis.from_url(redis_url)
    try:
        entries = client.xrange(stream)
        assert len(entries) >= 40
        assert all(set(fields) <= {b"k", b"w"} for _id, fields in entries)
        assert client.memory_usage(stream) < 200 * len(entries)  # was ~12.5 KB an entry
        for key in (stream, watch):
            if client.exists(key):
                assert 0 < client.pttl(key) <= ttl_ms, key
    finally:
        client.close()


async def test_nothing_is_kept_in_memory_after_the_waits_end(emu: Emulator, redis_url: str) -> None:
    async with (
        emu.client(rate_limit_backend=redis_url) as a,
        emu.client(rate_limit_backend=redis_url) as b,
    ):
        for _round in range(2):
            ids = seed_runs(emu, 40)
            [mine] = seed_runs(emu, 1)
            hold = asyncio.ensure_future(a.wait_for_run(mine))
            await until(lambda: watcher(a).leading)
            waits = [asyncio.ensure_future(b.wait_for_runs(ids[:30]))]
            waits += [asyncio.ensure_future(b.wait_for_run(ids[30], timeout=0.2))]
            waits += [asyncio.ensure_future(x.wait_for_run(ids[31])) for x in (a, b)]
            await asyncio.sleep(0.5)
            # The leader polls the follower's runs but remembers only its own.
            assert set(watcher(a)._seen) <= set(watcher(a)._subs)
            for wait in waits[-2:]:
                wait.cancel()
            for run_id in [mine, *ids]:
                emu.finish_run(run_id, "completed")
            await asyncio.wait_for(asyncio.gather(hold, *waits, return_exceptions=True), 20)
        await asyncio.sleep(0.3)
        for agent in (a, b):
            state = watcher(agent)
            held = {
                name: len(getattr(state, name))
                for name in ("_subs", "_new", "_relays", "_outbox", "_seen", "_since", "_reads")
            }
            assert not any(held.values()), (agent, held)


@pytest.mark.parametrize("key", ["updates", "watch"])
async def test_a_fleet_key_of_the_wrong_type_is_replaced_not_fatal(
    emu: Emulator, redis_url: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codegen_async.polling")
    ids = seed_runs(emu, 3)
    async with (
        emu.client(rate_limit_backend=redis_url) as a,
        emu.client(rate_limit_backend=redis_url) as b,
    ):
        wa = asyncio.ensure_future(a.wait_for_runs(ids[:2]))
        await until(lambda: watcher(a).leading)
        client = redis.Redis.from_url(redis_url)
        try:
            name = watcher(a)._lease_key[: -len("lease")] + key
            client.delete(name)
            client.set(name, "written by another program")  # no expiry: there for good
            wb = asyncio.ensure_future(b.wait_for_runs(ids[1:]))
            # Within a few lease periods both are back in the fleet, the key repaired.
            fleet = (watcher(a), watcher(b))
            await until(lambda: client.type(name) != b"string")
            # A Redis call that met the wrong-typed key just before the repair may still
            # send its process to its own polling for a lease period (seen once in a loaded
            # 3.13 lane): let that surface, then the fleet must be whole again, for good.
            await asyncio.sleep(1.0)
            await until(
                lambda: not any(w.local for w in fleet) and sum(w.leading for w in fleet) == 1
            )
            assert client.type(name) != b"string"
        finally:
            client.close()
        follower = b if watcher(a).leading else a
        requests = follower.stats.requests
        for run_id in ids:
            emu.finish_run(run_id, "completed")
        await asyncio.wait_for(asyncio.gather(wa, wb), 20)
        assert follower.stats.requests - requests <= 1  # served by the fleet, not alone
    assert any("wrong type" in r.getMessage() for r in caplog.records)


async def test_the_stored_status_outlives_its_expiry_while_the_run_is_waited_on(
    emu: Emulator, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: statuses kept 1.5 s (an hour), runs re-registered every 0.2 s.
    monkeypatch.setattr("codegen_async._polling._fleet.LAST_TTL_MS", 1500)
    [run_id] = seed_runs(emu, 1)
    async with (
        emu.client(rate_limit_backend=redis_url) as a,
        emu.client(rate_limit_backend=redis_url) as b,
    ):
        watcher(a)._settings.ttl = watcher(b)._settings.ttl = 0.6
        wait = asyncio.ensure_future(a.wait_for_run(run_id))
        await until(lambda: watcher(a).leading)
        await asyncio.sleep(3.0)  # the run has not changed for twice the stored status's life
        assert await first_status(b, run_id) == "running"  # a new watcher learns it at once
        emu.finish_run(run_id, "completed")
        assert (await asyncio.wait_for(wait, 20)).status == "completed"
