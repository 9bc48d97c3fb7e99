"""Every saga and the health observer end to end on the real-Docker tier: the relay and the
workers of this process reach a real OpenSSH server whose sessions run the real docker client,
Compose v2 and the contract images (tests/images); requests come through the API where a user
would make them, and what the server answers is looked at from outside, through its proxy."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import pytest_asyncio
from api_fixtures import Caller
from health_fixtures import HealthWorld
from realdocker_fixtures import (  # noqa: F401
    DockerFleet,
    DockerSshd,
    docker_engine_fixture,
    docker_fleet_fixture,
    docker_server_fixture,
    host,
    outcome,
)
from realdocker_harness import Inventory
from realdocker_probes import (
    Poller,
    docker,
    get,
    inventory,
    listing,
    websocket_handshake,
)
from saga_fixtures import Instance
from waiting import eventually

from events.instance import (
    ActionFailed,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    ProvisioningFailed,
    RedeployRequested,
    RemovalFailed,
    RemovalRequested,
)
from events.server import ServerValidated, ServerValidationFailed, server_stream

pytestmark = pytest.mark.realdocker

HEALTH = "{{if .State.Health}}{{.State.Health.Status}}{{end}}"
# What a server keeps once its last instance is gone: the proxy and the network it shares.
SERVER_SHARED = Inventory(
    frozenset({"odoofleet-proxy"}), frozenset(), frozenset({"odoofleet-edge"})
)


async def validated_server(fleet: DockerFleet) -> str:
    server_id = await fleet.register_server()
    stream = server_stream(server_id)
    done = await fleet.wait_for(stream, ServerValidated, ServerValidationFailed, timeout=60)
    assert isinstance(done, ServerValidated), done
    return server_id


async def provision(fleet: DockerFleet, server_id: str, slug: str) -> tuple[Instance, float]:
    """A new instance, running; and how long from the create to InstanceProvisioned."""
    started = time.monotonic()
    instance = await fleet.create_instance(server_id, slug=slug)
    done = await outcome(
        fleet, instance, instance.operation_id, InstanceProvisioned, ProvisioningFailed
    )
    assert isinstance(done, InstanceProvisioned), done
    return instance, time.monotonic() - started


async def docker_healthy(fleet: DockerFleet, container: str) -> None:
    """Docker's own healthcheck of the container says healthy (it runs every 10 s)."""
    engine = fleet.sshd.engine

    async def healthy() -> bool:
        return await docker(engine, "inspect", "-f", HEALTH, container) == "healthy"

    await eventually(healthy, timeout=60, interval=0.5, message=f"{container} healthy")


async def answers(instance: Instance, status: int) -> None:
    async def there() -> bool:
        try:
            return (await asyncio.to_thread(get, host(instance)))[0] == status
        except OSError:
            return False

    await eventually(there, timeout=30, interval=0.1, message=f"{host(instance)} answers {status}")


@pytest_asyncio.fixture
async def server_id(docker_fleet: DockerFleet) -> str:
    return await validated_server(docker_fleet)


@pytest_asyncio.fixture
async def acme(docker_fleet: DockerFleet, server_id: str) -> Instance:
    instance, elapsed = await provision(docker_fleet, server_id, "acme")
    print(f"\ncreate -> InstanceProvisioned: {elapsed:.1f}s")
    return instance


async def test_validation_records_the_real_docker_and_compose_versions_of_the_server(
    docker_fleet: DockerFleet,
) -> None:
    engine = docker_fleet.sshd.engine
    server_id = await docker_fleet.register_server()

    done = await docker_fleet.wait_for(
        server_stream(server_id), ServerValidated, ServerValidationFailed, timeout=60
    )

    assert isinstance(done, ServerValidated), done
    assert done.docker_version == await docker(engine, "version", "-f", "{{.Server.Version}}")
    assert done.compose_version == await docker(engine, "compose", "version", "--short")
    assert done.compose_version.startswith("2.")
    assert done.cpu_cores == os.cpu_count()


async def test_a_provisioned_instance_is_healthy_by_docker_and_served_through_the_proxy(
    docker_fleet: DockerFleet, acme: Instance
) -> None:
    await docker_healthy(docker_fleet, "acme-db-db-1")
    await docker_healthy(docker_fleet, "acme-blue-odoo-1")

    status, body = await asyncio.to_thread(get, host(acme))
    assert (status, '"status": "pass"' in body) == (200, True), body
    assert (await asyncio.to_thread(get, "nobody.odoo.localhost"))[0] == 404
    assert (await asyncio.to_thread(get, host(acme), "/web/login"))[0] == 200
    handshake = await asyncio.to_thread(websocket_handshake, host(acme))
    assert handshake.startswith("HTTP/1.1 101"), handshake
    direct = await asyncio.to_thread(get, "anything", "/web/health", acme.http_port_host)
    assert direct[0] == 200


async def test_the_observer_sees_a_crashed_app_restarted_by_docker_as_degraded_then_healthy(
    docker_fleet: DockerFleet, server_id: str, acme: Instance, projections: None
) -> None:
    engine = docker_fleet.sshd.engine
    app = "acme-blue-odoo-1"
    world = HealthWorld(docker_fleet, server_id, acme)
    try:
        await world.wait_instance_status("running")
        await docker_healthy(docker_fleet, app)
        await world.cycle()
        assert [o.status for o in await world.observations()] == ["healthy"]

        os.kill(int(await docker(engine, "inspect", "-f", "{{.State.Pid}}", app)), signal.SIGKILL)

        async def restarted() -> bool:
            state = await docker(
                engine, "inspect", "-f", "{{.RestartCount}} {{.State.Status}}", app
            )
            if state != "1 running":
                return False
            try:
                return (await asyncio.to_thread(get, host(acme)))[0] == 200
            except OSError:
                return False

        await eventually(restarted, timeout=60, interval=0.2, message="restarted by Docker")
        await world.cycle()
        await world.cycle()
        observed = await world.observations()
    finally:
        await world.close()

    assert [o.status for o in observed] == ["healthy", "degraded", "healthy"]
    assert observed[1].restart_count == 1
    assert "restarted 1x" in observed[1].message
    assert observed[1].container_state == "running"
    # From docker stats and the container's cgroup limit.
    assert observed[0].memory_bytes
    assert observed[0].memory_limit_bytes


async def test_stop_start_and_restart_reach_the_containers(
    docker_fleet: DockerFleet, acme: Instance
) -> None:
    engine = docker_fleet.sshd.engine
    app = "acme-blue-odoo-1"
    started_at = await docker(engine, "inspect", "-f", "{{.State.StartedAt}}", app)

    stop = await docker_fleet.control(acme, "stop")
    assert isinstance(
        await outcome(docker_fleet, acme, stop, InstanceStopped, ActionFailed), InstanceStopped
    )
    assert await docker(engine, "inspect", "-f", "{{.State.Status}}", app) == "exited"
    assert await docker(engine, "inspect", "-f", "{{.State.Status}}", "acme-db-db-1") == "running"
    await answers(acme, 502)

    start = await docker_fleet.control(acme, "start")
    assert isinstance(
        await outcome(docker_fleet, acme, start, InstanceStarted, ActionFailed), InstanceStarted
    )
    await answers(acme, 200)

    restart = await docker_fleet.control(acme, "restart")
    done = await outcome(docker_fleet, acme, restart, InstanceRestarted, ActionFailed)
    assert isinstance(done, InstanceRestarted), done
    assert await docker(engine, "inspect", "-f", "{{.State.StartedAt}}", app) != started_at
    await answers(acme, 200)


async def test_a_patch_redeploys_blue_green_with_zero_failed_requests_through_the_proxy(
    docker_fleet: DockerFleet, acme: Instance, alice: Caller
) -> None:
    engine = docker_fleet.sshd.engine
    with Poller(host(acme)) as poller:
        await eventually(lambda: poller.polls > 10, timeout=10, message="polling")
        began = time.monotonic()
        answer = await alice.patch(f"/api/instances/{acme.id}", json={"envVars": {"A": "b"}})
        assert answer.status_code == 200, answer.text
        [asked] = [
            e for e in await docker_fleet.events(acme.stream) if isinstance(e, RedeployRequested)
        ]
        done = await outcome(
            docker_fleet, acme, asked.operation_id, InstanceRedeployed, ActionFailed
        )
        took = time.monotonic() - began
        # The old colour's requests drain after the switch: keep polling through it.
        await asyncio.sleep(1.0)

    print(f"\nredeploy {took:.1f}s: {len(poller.failures)} failed of {poller.polls} polls")
    assert isinstance(done, InstanceRedeployed), done
    assert done.active_color == "green"
    assert poller.failures == []
    assert poller.polls > 100
    assert (
        await docker(engine, "inspect", "-f", "{{.State.Status}}", "acme-green-odoo-1") == "running"
    )
    assert (
        await docker(engine, "inspect", "-f", "{{.State.Status}}", "acme-blue-odoo-1") == "exited"
    )
    env = await docker(engine, "inspect", "-f", "{{json .Config.Env}}", "acme-green-odoo-1")
    assert '"A=b"' in env


async def test_other_instances_keep_answering_while_one_is_created_redeployed_and_deleted(
    docker_fleet: DockerFleet, server_id: str, acme: Instance
) -> None:
    with Poller(host(acme)) as poller:
        await eventually(lambda: poller.polls > 10, timeout=10, message="polling")
        other, _ = await provision(docker_fleet, server_id, "other")
        redeploy = await docker_fleet.redeploy(other, "green")
        redeployed = await outcome(docker_fleet, other, redeploy, InstanceRedeployed, ActionFailed)
        removal = await docker_fleet.remove(other)
        removed = await outcome(docker_fleet, other, removal, InstanceRemoved, RemovalFailed)
        await asyncio.sleep(1.0)

    print(f"\nacme while other lived: {len(poller.failures)} failed of {poller.polls} polls")
    assert isinstance(redeployed, InstanceRedeployed), redeployed
    assert isinstance(removed, InstanceRemoved), removed
    assert poller.failures == []


async def test_a_deleted_instance_leaves_no_container_volume_network_directory_or_route(
    docker_fleet: DockerFleet, server_id: str, alice: Caller
) -> None:
    engine = docker_fleet.sshd.engine
    root = docker_fleet.sshd.root
    before = await inventory(engine)
    acme, _ = await provision(docker_fleet, server_id, "acme")
    # Both colours have existed: whatever a colour leaves behind, both would.
    redeploy = await docker_fleet.redeploy(acme, "green")
    assert isinstance(
        await outcome(docker_fleet, acme, redeploy, InstanceRedeployed, ActionFailed),
        InstanceRedeployed,
    )

    began = time.monotonic()
    answer = await alice.delete(f"/api/instances/{acme.id}")
    assert answer.status_code == 202, answer.text
    [removal] = [
        e for e in await docker_fleet.events(acme.stream) if isinstance(e, RemovalRequested)
    ]
    removed = await outcome(
        docker_fleet, acme, removal.operation_id, InstanceRemoved, RemovalFailed
    )
    assert isinstance(removed, InstanceRemoved), removed

    async def gone() -> bool:
        return (await alice.get(f"/api/instances/{acme.id}")).status_code == 404

    await eventually(gone, timeout=30, interval=0.1, message="GET answers 404")
    took = time.monotonic() - began

    left = (await inventory(engine) - before).without_generated()
    print(f"\ndelete -> 404: {took:.1f}s; new on the engine since before the create: {left}")
    assert left - SERVER_SHARED == Inventory.empty()
    assert [path for path in listing(root) if not path.startswith("_proxy")] == []
    assert "acme" not in " ".join(listing(root / "_proxy"))
    assert (await asyncio.to_thread(get, host(acme)))[0] == 404
