"""NATS SIGKILLed while sagas run, and started again on the same port and store: every saga
completes, every change on the server is made once, and JetStream holds each event once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
import pytest_asyncio
from fault_fixtures import (  # noqa: F401
    PROVISIONING_CHANGES,
    calls_in_flight,
    changes,
    check_published_once_in_log_order,
    cleaned_up,
    consumers_settled,
    control,
    create,
    private_nats_fixture,
)
from infra import NatsProcess
from saga_fixtures import PROVISIONING, Fleet, Instance, steps_of
from sshd_harness import SshdServer
from waiting import eventually

from events.instance import (
    ActionFailed,
    InstanceProvisioned,
    InstanceRestarted,
    ProvisioningFailed,
)
from events.operation import OperationStepCompleted, OperationStepStarted, OperationSucceeded
from events.pool import Pool
from events.registry import EventRegistry
from events.server import ServerValidated, server_stream
from odoofleet.settings import Settings

pytestmark = pytest.mark.heavy

HELD = ("hold:compose-up", "hold:compose-restart")
SAGA_DURABLES = ("saga-ProvisioningRequested", "saga-ActionRequested")


@pytest_asyncio.fixture(name="fleet_on_private_nats")
async def fleet_on_private_nats_fixture(
    settings: Settings,
    pool: Pool,
    registry: EventRegistry,
    sshd: SshdServer,
    private_nats: NatsProcess,
) -> AsyncIterator[Fleet]:
    """The relay and every saga's workers, talking to the test's own NATS."""
    own = msgspec.structs.replace(settings, nats_url=private_nats.url)
    fleet = Fleet(own, pool, registry, sshd)
    async with cleaned_up(fleet):
        fleet.start_relay()
        fleet.start_workers()
        yield fleet


async def _provisioned(fleet: Fleet, instance: Instance) -> None:
    outcome = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    assert isinstance(outcome, InstanceProvisioned), outcome


async def _ran_each_step_once(fleet: Fleet, operation_id: str, steps: list[str]) -> None:
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepStarted) == steps, operation
    assert steps_of(operation, OperationStepCompleted) == steps, operation
    assert isinstance(operation[-1], OperationSucceeded), operation[-1]


async def test_sagas_in_flight_when_nats_is_killed_complete_once_after_it_restarts(
    fleet_on_private_nats: Fleet, private_nats: NatsProcess
) -> None:
    fleet, settings = fleet_on_private_nats, fleet_on_private_nats.settings
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    running = await create(fleet, server_id, "before")
    await _provisioned(fleet, running)

    # Two provisionings and a restart stopped mid-step on the server; a third provisioning
    # waits in JetStream for a free worker (two per saga).
    fleet.sshd.arm(*HELD)
    waiting = [await create(fleet, server_id, f"shop-{n}") for n in (1, 2, 3)]
    restart = await control(fleet, running, "restart")
    slugs = [instance.slug for instance in waiting]

    def held() -> bool:
        restarting = changes(fleet.sshd, "before")["app-restart"] == 1
        return restarting and len(calls_in_flight(fleet.sshd, slugs, "db-up")) == 2

    await eventually(held, timeout=20, message="two db-ups and a restart in flight")
    in_flight = [i for i in waiting if i.slug in calls_in_flight(fleet.sshd, slugs, "db-up")]

    private_nats.kill()
    created_while_down = await create(fleet, server_id, "shop-4")
    fleet.sshd.disarm(*HELD)
    # What was in flight finishes without NATS, which a saga needs only to be given its
    # work and to acknowledge it.
    for instance in in_flight:
        await fleet.wait_ended(instance.operation_id)
    await fleet.wait_ended(restart)

    private_nats.start()
    everyone = [*waiting, created_while_down]
    for instance in everyone:
        await _provisioned(fleet, instance)
    restarted = await fleet.wait_for(running.stream, InstanceRestarted, ActionFailed)

    async def settled() -> bool:
        return await consumers_settled(private_nats.url, settings.nats_stream, SAGA_DURABLES)

    await eventually(settled, timeout=30, interval=0.2, message="every saga message acked")
    assert isinstance(restarted, InstanceRestarted), restarted
    for instance in everyone:
        await _ran_each_step_once(fleet, instance.operation_id, PROVISIONING)
        assert changes(fleet.sshd, instance.slug) == PROVISIONING_CHANGES
    await _ran_each_step_once(fleet, restart, ["app-restart", "readiness"])
    assert changes(fleet.sshd, "before") == {**PROVISIONING_CHANGES, "app-restart": 1}
    await check_published_once_in_log_order(fleet.store, settings)
