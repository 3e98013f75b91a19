"""Fleet run watching: its lifecycle (start, stop, fallback, rejoin) and its keys.

Against a real redis-server and the emulator, as ``test_polling_fleet.py`` (whose fixtures
and helpers this module reuses); each client stands for a process.
"""

from __future__ import annotations

import asyncio

import pytest

redis = pytest.importorskip("redis")

from codegen_async.emulator import Emulator  # noqa: E402
from tests.polling import test_polling_fleet as base  # noqa: E402
from tests.polling.test_polling_fleet import LONG, SCALE, seed_runs, until, watcher  # noqa: E402
from tests.test_ratelimit_redis import REDIS_SERVER  # noqa: E402

# The same fixtures as the fleet's other tests (this module gets its own redis-server).
redis_server = base.redis_server
redis_url = base.redis_url
emu = base.emu

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
]


async def test_clients_of_different_servers_never_share_a_fleet(redis_url: str) -> None:
    token = "tok-shared-1234567890"
    async with (
        Emulator(time_scale=SCALE, run_duration=LONG, seed=3, token=token) as prod,
        Emulator(time_scale=SCALE, run_duration=LONG, seed=4, token=token) as staging,
    ):
        p = prod.client(rate_limit_backend=redis_url)
        s = staging.client(rate_limit_backend=redis_url)
        # The same server spelt differently is the same fleet.
        spelt = prod.base_url.replace("http://", "HTTP://") + "/"
        same = prod.client(rate_limit_backend=redis_url, base_url=spelt)
        try:
            assert watcher(same)._lease_key == watcher(p)._lease_key
            assert watcher(s)._lease_key != watcher(p)._lease_key
            staging_ids = seed_runs(staging, 3)
            prod_ids = seed_runs(prod, 3)
            assert staging_ids == prod_ids  # the same ids: different runs on each server
            hold = asyncio.ensure_future(s.wait_for_run(staging_ids[0]))
            await until(lambda: watcher(s).leading)
            staging.finish_run(prod_ids[2], "failed")
            wait = asyncio.ensure_future(p.wait_for_run(prod_ids[2]))
            await asyncio.sleep(0.5)
            assert not wait.done(), "a run of another server answered this wait"
            prod.finish_run(prod_ids[2], "completed")
            assert (await asyncio.wait_for(wait, 20)).status == "completed"
            staging.finish_run(staging_ids[0], "completed")
            await asyncio.wait_for(hold, 20)
        finally:
            for agent in (p, s, same):
                await agent.aclose()
