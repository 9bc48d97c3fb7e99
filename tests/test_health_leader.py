"""One health observer leads across worker processes; another takes over when it stops."""

from __future__ import annotations

import asyncio

import msgspec
from health_fixtures import HealthWorld, health_world_fixture  # noqa: F401
from saga_fixtures import ACK_WAIT, QUICK, bare_fleet_fixture  # noqa: F401
from waiting import eventually

from events.health import health_stream
from events.metadata import EventMetadata
from workers.runtime.run import run_workers


async def _authors(world: HealthWorld) -> list[str]:
    recorded = await world.fleet.store.read_stream(health_stream(world.instance.id))
    return [msgspec.json.decode(r.metadata, type=EventMetadata).actor.name for r in recorded]


def _work(world: HealthWorld, name: str, stop: asyncio.Event) -> asyncio.Task[None]:
    # A heartbeat of 0 records every cycle, so each cycle shows who observed.
    settings = msgspec.structs.replace(
        world.fleet.settings, worker_name=name, health_interval=0.2, health_heartbeat=0.0
    )
    return asyncio.create_task(
        run_workers(
            settings.for_workers(),
            world.pool,
            stop,
            root=world.fleet.root,
            ack_wait=ACK_WAIT,
            config=QUICK,
            shutdown_grace=0.0,
        )
    )


async def test_one_observer_leads_across_workers_and_another_takes_over(
    health_world: HealthWorld,
) -> None:
    stops = {name: asyncio.Event() for name in ("w1", "w2")}
    tasks = {name: _work(health_world, name, stop) for name, stop in stops.items()}
    try:

        async def observed(count: int) -> bool:
            return len(await _authors(health_world)) >= count

        await eventually(lambda: observed(5), timeout=20, message="5 observations")
        leaders = set(await _authors(health_world))
        assert len(leaders) == 1
        (leader,) = leaders
        stops[leader].set()
        await asyncio.wait_for(tasks[leader], 30)
        seen = len(await _authors(health_world))

        await eventually(lambda: observed(seen + 3), timeout=20, message="the successor")
        authors = await _authors(health_world)
        assert set(authors[seen:]) == set(stops) - {leader}
    finally:
        for stop in stops.values():
            stop.set()
        await asyncio.gather(*tasks.values())
