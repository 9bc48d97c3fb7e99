"""PostgreSQL stopped and started again under the relay, the projections and the workers
while sagas are mid-step, none of them restarted: every write accepted ends up projected and
published once, every saga completes, and no step runs twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import psycopg
import pytest
import pytest_asyncio
from fault_fixtures import (  # noqa: F401
    PROVISIONING_CHANGES,
    Background,
    PrivatePostgres,
    calls_in_flight,
    changes,
    check_published_once_in_log_order,
    cleaned_up,
    create,
    private_postgres_fixture,
)
from saga_fixtures import ACK_WAIT, ORG, PROVISIONING, QUICK, Fleet, Instance, steps_of
from sshd_harness import SshdServer
from waiting import eventually

from events.instance import InstanceProvisioned, ProvisioningFailed
from events.operation import OperationStepCompleted, OperationSucceeded
from events.pool import open_pool
from events.registry import EventRegistry
from events.server import ServerValidated, server_stream
from odoofleet.settings import Settings
from projections.catalog import READS
from projections.instances import get_instance
from projections.run import run_projections
from projections.waiting import wait_for_position
from workers.runtime.run import run_workers
from workers.sagas.readiness import Patience

pytestmark = pytest.mark.heavy

# PostgreSQL stays down, after the steps in flight finished on the server, until each of them
# has failed to record its completion this many times (about 7 s with the backoff and the
# checkout timeout below; production waits 5 s for a pooled connection): an outage of several
# checkout timeouts, scaled down from a restart or failover of half a minute.
RECORDING_RETRIES = 5
CHECKOUT_TIMEOUT = 1.0
# Readiness waits outlast the test's outage: a poll cut short by it is resumed, not failed.
PATIENT = msgspec.structs.replace(
    QUICK, readiness=Patience(timeout=30.0, interval=0.05, command_limit=10.0)
)


@dataclass
class World:
    fleet: Fleet
    postgres: PrivatePostgres
    services: list[asyncio.Task[None]]


@pytest_asyncio.fixture(name="world")
async def world_fixture(
    settings: Settings,
    registry: EventRegistry,
    sshd: SshdServer,
    private_postgres: PrivatePostgres,
) -> AsyncIterator[World]:
    """The relay, the projections and the workers (health observer included) in this
    process, on the test's own PostgreSQL."""
    # Three provisionings of one organization run at once here: a share of 3 per
    # organization keeps the fairness rule (issue 13) from deferring the third.
    own = msgspec.structs.replace(
        settings, database_url=private_postgres.url, worker_org_concurrency=3
    )
    pool = await open_pool(
        own.database_url, min_size=1, max_size=20, checkout_timeout=CHECKOUT_TIMEOUT
    )
    fleet = Fleet(own, pool, registry, sshd)
    background = Background()
    try:
        async with cleaned_up(fleet, background):
            fleet.start_relay()
            services = [
                background.start(
                    lambda stop: run_workers(
                        own.for_workers(),
                        pool,
                        stop,
                        root=fleet.root,
                        ack_wait=ACK_WAIT,
                        concurrency=3,
                        retry_delay=0.2,
                        config=PATIENT,
                        shutdown_grace=0.0,
                    )
                ),
                background.start(lambda stop: run_projections(pool, own.database_url, stop)),
            ]
            yield World(fleet, private_postgres, services)
    finally:
        await pool.close()


async def _accepted_create(fleet: Fleet, server_id: str, slug: str) -> Instance:
    """Create as a client answered 503 would: again, until the write is accepted (just after
    the restart, pooled connections are found broken one use at a time)."""
    created: list[Instance] = []

    async def accepted() -> bool:
        with contextlib.suppress(psycopg.OperationalError):
            created.append(await create(fleet, server_id, slug))
        return bool(created)

    await eventually(accepted, timeout=20, interval=0.2, message=f"{slug} accepted")
    return created[0]


async def _provisioned_once(fleet: Fleet, instance: Instance) -> None:
    outcome = await fleet.wait_for(
        instance.stream, InstanceProvisioned, ProvisioningFailed, timeout=40
    )
    assert isinstance(outcome, InstanceProvisioned), outcome
    operation = await fleet.operation(instance.operation_id)
    # A step may be started again (an attempt whose lock session was gone ran nothing), but
    # none completes twice, and none makes its change on the server twice.
    assert steps_of(operation, OperationStepCompleted) == PROVISIONING, operation
    assert isinstance(operation[-1], OperationSucceeded), operation[-1]
    assert changes(fleet.sshd, instance.slug) == PROVISIONING_CHANGES


async def _projected(fleet: Fleet, instances: list[Instance]) -> None:
    """Every projection reflects the whole log, and shows each instance running at its
    stream's version."""
    log = await fleet.store.read_all(limit=100_000)
    applied = await wait_for_position(
        fleet.pool, log[-1].position, timeout=20, projections=tuple(READS)
    )
    assert applied, "projections behind the log"
    async with fleet.pool.connection() as conn:
        for instance in instances:
            view = await get_instance(conn, ORG, instance.id, now=datetime.now(UTC))
            assert view is not None
            assert (view.status, view.version) == (
                "running",
                await fleet.store.stream_version(instance.stream),
            )


def _retried_recording(caplog: pytest.LogCaptureFixture, operations: list[str]) -> bool:
    """Each operation's worker has failed to record its step this many times."""
    messages = [r.getMessage() for r in caplog.records if r.name == "workers.sagas.operation_log"]
    return all(
        sum(f"operation {op}: cannot record" in m for m in messages) >= RECORDING_RETRIES
        for op in operations
    )


async def test_a_postgres_restart_mid_saga_loses_nothing_and_runs_no_step_twice(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="workers.sagas.operation_log")
    fleet = world.fleet
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    # One provisioning polls between commands (its database container is still starting),
    # two are mid-command (their `compose up` held on the server).
    fleet.sshd.override_container("polling-db-db-1", Health="starting")
    polling = await create(fleet, server_id, "polling")
    await fleet.wait_step_started(polling.operation_id, "db-healthy")
    fleet.sshd.arm("hold:compose-up")
    mid_command = [await create(fleet, server_id, slug) for slug in ("shop-1", "shop-2")]
    slugs = [instance.slug for instance in mid_command]
    await eventually(
        lambda: calls_in_flight(fleet.sshd, slugs, "db-up") == slugs,
        timeout=20,
        message="both db-ups running",
    )

    await world.postgres.stop()
    fleet.sshd.disarm("hold:compose-up")
    await eventually(
        lambda: all(fleet.sshd.container(f"{slug}-db-db-1") for slug in slugs),
        timeout=20,
        message="both db-ups done on the server",
    )
    await eventually(
        lambda: _retried_recording(caplog, [i.operation_id for i in mid_command]),
        timeout=30,
        message="the workers kept trying to record through the outage",
    )
    fleet.sshd.override_container("polling-db-db-1", Health="healthy")
    await world.postgres.start()

    after = await _accepted_create(fleet, server_id, "shop-3")
    everyone = [polling, *mid_command, after]
    for instance in everyone:
        await _provisioned_once(fleet, instance)
    await _projected(fleet, everyone)
    await check_published_once_in_log_order(fleet.store, fleet.settings)
    assert [service.done() for service in world.services] == [False, False]
