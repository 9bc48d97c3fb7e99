"""The world of the health tests: a provisioned, running instance on this test's sshd (the
stand-in docker behind it), the relay, the saga workers (their own observer off) and every
projection running, and observers whose cycles a test drives with a clock of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from projection_fixtures import projections_running
from saga_fixtures import ACK_WAIT, ORG, QUICK, Fleet, Instance
from waiting import eventually

from events.health import HealthObserved, health_stream
from events.instance import InstanceProvisioned, ProvisioningFailed
from events.pool import Pool
from events.server import ServerValidated, server_stream
from projections.health import HealthScoreView, HealthView, get_health, get_health_score
from projections.instances import get_instance
from projections.servers import get_server
from workers.health.observer import CycleReport, HealthObserver, ObserverConfig
from workers.runtime.run import run_workers
from workers.ssh.runner import SshRunner


class Clock:
    """The observer's time: starts at the wall clock's, moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class HealthWorld:
    def __init__(self, fleet: Fleet, server_id: str, instance: Instance) -> None:
        self.fleet, self.server_id, self.instance = fleet, server_id, instance
        self.pool: Pool = fleet.pool
        self.clock = Clock()
        self.runner = SshRunner(command_timeout=60.0)
        self.observer = self.new_observer()

    def new_observer(self, worker: str = "observer-1", **config: Any) -> HealthObserver:
        return HealthObserver(
            self.pool,
            self.fleet.store,
            self.fleet.vault,
            self.runner,
            worker=worker,
            config=ObserverConfig(**({"connect_timeout": 5.0} | config)),
            clock=self.clock,
        )

    async def cycle(self, observer: HealthObserver | None = None, *, after: float = 30.0) -> int:
        """Move the clock on by `after` seconds and run one cycle; the events it appended."""
        self.clock.advance(after)
        report: CycleReport = await (observer or self.observer).observe_once()
        return report.appended

    @property
    def app_container(self) -> str:
        return f"{self.instance.slug}-blue-odoo-1"

    async def observations(self) -> list[HealthObserved]:
        events = await self.fleet.events(health_stream(self.instance.id))
        return [e for e in events if isinstance(e, HealthObserved)]

    async def projected(self) -> HealthView:
        """The health read model once it has caught up with the instance's health stream."""
        stream = health_stream(self.instance.id)
        version = await self.fleet.store.stream_version(stream)
        found: list[HealthView] = []

        async def caught_up() -> bool:
            view = await get_health(self.pool, ORG, self.instance.id)
            found[:] = [view] if view is not None else []
            return view is not None and view.version == version

        await eventually(caught_up, timeout=15, message=f"{stream} at version {version}")
        return found[0]

    async def score(self) -> HealthScoreView:
        await self.projected()
        return await get_health_score(self.pool, ORG, self.instance.id)

    async def wait_instance_status(self, status: str) -> None:
        async def reached() -> bool:
            view = await get_instance(self.pool, ORG, self.instance.id)
            return view is not None and view.status == status

        await eventually(reached, timeout=30, message=f"instance {status} in the read model")

    async def close(self) -> None:
        await self.runner.close()


@pytest_asyncio.fixture(name="health_world")
async def health_world_fixture(
    bare_fleet: Fleet, pool: Pool, database_url: str
) -> AsyncIterator[HealthWorld]:
    stop = asyncio.Event()
    workers = asyncio.create_task(
        run_workers(
            bare_fleet.settings.for_workers(),
            pool,
            stop,
            root=bare_fleet.root,
            ack_wait=ACK_WAIT,
            concurrency=2,
            retry_delay=0.2,
            config=QUICK,
            shutdown_grace=0.0,
            observe_health=False,
        )
    )
    try:
        async with projections_running(pool, database_url):
            server_id = await bare_fleet.register_server()
            await bare_fleet.wait_for(server_stream(server_id), ServerValidated)
            instance = await bare_fleet.create_instance(server_id)
            done = await bare_fleet.wait_for(
                instance.stream, InstanceProvisioned, ProvisioningFailed
            )
            assert isinstance(done, InstanceProvisioned), done
            world = HealthWorld(bare_fleet, server_id, instance)
            await world.wait_instance_status("running")

            async def server_active() -> bool:
                view = await get_server(pool, ORG, server_id)
                return view is not None and view.status == "active"

            await eventually(server_active, timeout=30, message="server active in the read model")
            try:
                yield world
            finally:
                await world.close()
    finally:
        stop.set()
        await asyncio.wait_for(workers, 30)
