"""A server that hangs mid-saga: a docker call that never answers, or an sshd that stops
answering while a command runs. The step times out, the operation fails with a clear
recorded error, and the same worker goes on to provision the next instance."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from fault_fixtures import (
    Background,
    changes,
    cleaned_up,
    create,
    signal_all,
    sshd_processes,
    standin_calls_running,
)
from saga_fixtures import ACK_WAIT, QUICK, Fleet, Instance, steps_of
from sshd_harness import SshdServer, start_sshd
from waiting import eventually

from events.instance import InstanceProvisioned, ProvisioningFailed
from events.operation import OperationFailed, OperationStarted, OperationStepFailed
from events.pool import Pool
from events.registry import EventRegistry
from events.server import ServerValidated, server_stream
from odoofleet.settings import Settings
from workers.runtime.run import run_workers
from workers.ssh.network_policy import LOOPBACK_NETWORKS
from workers.ssh.runner import KILL_GRACE_SECONDS

pytestmark = pytest.mark.heavy

WORKER = "worker-hang"
COMPOSE_LIMIT = 2.0  # the time limit of `docker compose up` (the db-up step)
CONNECT_TIMEOUT = 2.0
HUNG = "did not finish within 2s"
# Five deliveries, each waiting at most a connect timeout for a session or a connection, and
# the redelivery delays between them. Without a deadline on opening a session, the first
# alone waited for SSH keepalives to give up (three intervals of 15 s).
GIVE_UP_WITHIN = 20.0


@dataclass
class HangWorld:
    fleet: Fleet
    worker: asyncio.Task[None]


@pytest_asyncio.fixture(name="world")
async def world_fixture(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
) -> AsyncIterator[HangWorld]:
    """The relay, and one worker process's sagas with one operation of a kind at a time: if
    a hang wedged it, nothing after would run."""
    named = msgspec.structs.replace(
        settings, worker_name=WORKER, server_allowed_networks=LOOPBACK_NETWORKS
    )
    fleet = Fleet(named, pool, registry, sshd)
    config = msgspec.structs.replace(
        QUICK, compose_limit=COMPOSE_LIMIT, connect_timeout=CONNECT_TIMEOUT
    )
    background = Background()
    async with cleaned_up(fleet, background):
        fleet.start_relay()
        worker = background.start(
            lambda stop: run_workers(
                named.for_workers(),
                pool,
                stop,
                root=fleet.root,
                ack_wait=ACK_WAIT,
                concurrency=1,
                retry_delay=0.2,
                config=config,
                shutdown_grace=0.0,
                observe_health=False,
            )
        )
        yield HangWorld(fleet, worker)


@pytest.fixture(name="healthy_sshd")
def healthy_sshd_fixture(tmp_path: Path) -> Iterator[SshdServer]:
    """A second server, which keeps answering."""
    server = start_sshd(tmp_path / "healthy-sshd")
    yield server
    server.stop()


async def _validated_server(fleet: Fleet) -> str:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    return server_id


async def _failed_at_db_up(fleet: Fleet, instance: Instance) -> OperationStepFailed:
    """The provisioning failed at db-up with the time limit in its message; the step's
    recorded failure."""
    failed = await fleet.wait_for(instance.stream, ProvisioningFailed, InstanceProvisioned)
    assert isinstance(failed, ProvisioningFailed), failed
    assert failed.step == "db-up"
    assert HUNG in failed.message
    operation = await fleet.operation(instance.operation_id)
    assert steps_of(operation, OperationStepFailed) == ["db-up"]
    assert isinstance(operation[-1], OperationFailed)
    assert operation[-1].step == "db-up"
    step = next(e for e in operation if isinstance(e, OperationStepFailed))
    assert HUNG in step.error
    return step


async def _provisioned_by_the_same_worker(world: HangWorld, instance: Instance) -> None:
    outcome = await world.fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    assert isinstance(outcome, InstanceProvisioned), outcome
    started = (await world.fleet.operation(instance.operation_id))[0]
    assert isinstance(started, OperationStarted)
    assert started.worker == WORKER
    assert not world.worker.done()


async def test_a_docker_call_that_never_answers_fails_its_step_and_the_worker_goes_on(
    world: HangWorld,
) -> None:
    fleet = world.fleet
    server_id = await _validated_server(fleet)
    fleet.sshd.arm("hang:compose-up")

    stuck = await create(fleet, server_id, "stuck")
    step = await _failed_at_db_up(fleet, stuck)

    # The server's own `timeout` ended the call, well before the client's backstop.
    assert step.duration_ms < (COMPOSE_LIMIT + KILL_GRACE_SECONDS) * 1000
    await eventually(lambda: not standin_calls_running(fleet.sshd), message="hung call killed")
    fleet.sshd.disarm("hang:compose-up")
    healthy = await create(fleet, server_id, "healthy")
    await _provisioned_by_the_same_worker(world, healthy)
    assert changes(fleet.sshd, "stuck") == {"layout": 1, "db-up": 1}


async def test_an_sshd_that_stops_answering_mid_command_fails_the_step_and_the_worker_goes_on(
    world: HangWorld, healthy_sshd: SshdServer
) -> None:
    fleet = world.fleet
    frozen_id = await _validated_server(fleet)
    healthy_id = await _validated_server(
        Fleet(fleet.settings, fleet.pool, fleet.registry, healthy_sshd)
    )
    fleet.sshd.arm("hold:compose-up")
    stuck = await create(fleet, frozen_id, "stuck")
    await eventually(lambda: changes(fleet.sshd, "stuck")["db-up"] == 1, message="db-up running")

    frozen = sshd_processes(fleet.sshd)
    assert len(frozen) >= (1 if fleet.sshd.inprocess else 2)  # listener, connection processes
    signal_all(frozen, signal.SIGSTOP)
    try:
        step = await _failed_at_db_up(fleet, stuck)
        healthy = await create(fleet, healthy_id, "healthy")
        await _provisioned_by_the_same_worker(world, healthy)
    finally:
        signal_all(frozen, signal.SIGCONT)
    # No answer came: the client's own backstop ended the wait.
    assert step.duration_ms >= (COMPOSE_LIMIT + 2 * KILL_GRACE_SECONDS) * 1000


async def test_a_server_that_stops_answering_between_operations_fails_the_next_one_in_bounds(
    world: HangWorld, healthy_sshd: SshdServer
) -> None:
    fleet = world.fleet
    frozen_id = await _validated_server(fleet)  # the worker keeps this connection open
    healthy_id = await _validated_server(
        Fleet(fleet.settings, fleet.pool, fleet.registry, healthy_sshd)
    )
    frozen = sshd_processes(fleet.sshd)
    signal_all(frozen, signal.SIGSTOP)
    try:
        stuck = await create(fleet, frozen_id, "stuck")
        healthy = await create(fleet, healthy_id, "healthy")
        failed = await fleet.wait_for(
            stuck.stream, ProvisioningFailed, InstanceProvisioned, timeout=GIVE_UP_WITHIN
        )
        await _provisioned_by_the_same_worker(world, healthy)
    finally:
        signal_all(frozen, signal.SIGCONT)
    assert isinstance(failed, ProvisioningFailed), failed
    assert failed.step == "preflight"
    assert "gave up after repeated failures" in failed.message
    assert f"no answer within {CONNECT_TIMEOUT:g}s" in failed.message
    assert changes(fleet.sshd, "stuck") == {}
