"""A webhook worker killed in the middle of a delivery (SIGKILL, the receiver holding the
call): another worker sends it again once the lease runs out. Nothing is lost; the only
duplicate carries the same webhook-id, as Standard Webhooks allows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from api_fixtures import Caller, CallerFactory
from test_webhooks import QUICK, World, create, world_fixture  # noqa: F401
from waiting import eventually
from webhook_fixtures import Answer, Hang, Received, receivers

from odoofleet.settings import Settings

# The doomed worker's call may hang this long; its lane's lease is a little longer.
DOOMED = msgspec.structs.replace(QUICK, timeout=3.0, lease_margin=0.5)
_WORKER = """
import asyncio, logging, sys, msgspec
from events.pool import open_pool
from events.pool import Pool
from odoofleet.settings import Settings
from workers.webhooks.delivery import DeliveryConfig
from workers.webhooks.run import run_webhooks

settings = msgspec.json.decode(sys.argv[1], type=Settings)
config = msgspec.json.decode(sys.argv[2], type=DeliveryConfig)

async def main() -> None:
    logging.basicConfig(level=logging.INFO)
    pool = await open_pool(settings.database_url, min_size=1, max_size=8)
    stop = asyncio.Event()
    await run_webhooks(
        settings.for_workers(), pool, stop, config=config, fanout_ack_wait=0.3, worker="doomed"
    )

asyncio.run(main())
"""


@pytest_asyncio.fixture
async def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, webhook_allowed_networks="127.0.0.0/8")


@pytest.fixture
def doomed(settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    argv = [
        sys.executable,
        "-c",
        _WORKER,
        msgspec.json.encode(settings).decode(),
        msgspec.json.encode(DOOMED).decode(),
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    with (tmp_path / "doomed.log").open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(10)


async def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_only_the_same_id(
    world: World, caller: CallerFactory, doomed: subprocess.Popen[bytes]
) -> None:
    hooks: Caller = await caller(org="org-a", sub="alice", permissions=("manage:webhooks",))
    killed = asyncio.Event()

    def held_until_the_kill(_n: int, _r: Received) -> Answer | Hang:
        return Answer() if killed.is_set() else Hang()

    async with receivers(held_until_the_kill) as (receiver,):
        await create(hooks, receiver.url)
        ids = await world.server_events(3)
        await eventually(lambda: len(receiver.received) == 1, timeout=20, message="held call")
        doomed.kill()
        doomed.wait(10)
        killed.set()
        world.start_webhooks()
        await eventually(
            lambda: len(receiver.delivered_ids()) == 4, timeout=20, message="every delivery"
        )
        test_id = receiver.received[0].id
        assert receiver.delivered_ids() == [test_id, *ids]
        seen = [r.id for r in receiver.received]
        assert seen.count(test_id) == 2  # the held call, and the same message sent again
        assert sorted(set(seen)) == sorted({test_id, *ids})
        assert len(seen) == 5
