"""Teardown leaves nothing of the instance on its server and gives its slug and ports back;
it may start while the provisioning still runs, which it cancels first."""

from __future__ import annotations

import msgspec
from saga_fixtures import (  # noqa: F401
    ORG,
    QUICK,
    Fleet,
    bare_fleet_fixture,
    exists,
    fleet_fixture,
    kill_hung_standins,
    read_text,
    steps_of,
)
from waiting import eventually

from events.instance import (
    InstanceCreated,
    InstanceProvisioned,
    InstanceRemoved,
    RemovalAbandoned,
    RemovalFailed,
)
from events.operation import (
    OperationCancelled,
    OperationFailed,
    OperationStepCompleted,
    OperationStepStarted,
)
from events.reservation import PortsReleased, SlugReleased, ports_stream, slug_stream
from events.secrets import MASK, Vault
from events.server import ServerValidated, server_stream
from workers.server.commands import verify_removed_command
from workers.server.layout import InstanceLayout, ProxyLayout
from workers.ssh.runner import SshRunner

TEARDOWN = [
    "final-backup",  # skipped: these instances have no backup schedule
    "remove-route",
    "ports-down",
    "app-down-blue",
    "app-down-green",
    "db-down",
    "remove-volumes",
    "remove-network",
    "remove-directory",
    "verify",
    "release",
    "forget-secrets",
]


def standin_objects(fleet: Fleet, kind: str, prefix: str) -> list[str]:
    folder = fleet.sshd.state_dir / kind
    return sorted(p.stem for p in folder.glob(f"{prefix}*.json")) if folder.exists() else []


async def test_teardown_removes_everything_and_releases_the_reservations(
    fleet: Fleet, ssh_runner: SshRunner
) -> None:
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)

    operation_id = await fleet.remove(instance)
    removed = await fleet.wait_for(instance.stream, InstanceRemoved)

    assert removed.operation_id == operation_id
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepCompleted) == TEARDOWN
    layout = InstanceLayout("acme", fleet.root)
    verified = await ssh_runner.run(
        fleet.sshd.connection_info(),
        verify_removed_command(layout, ProxyLayout(fleet.root), instance.id),
    )
    assert verified.ok, verified.stderr
    assert not exists(layout.dir)
    assert not exists(f"{fleet.root}/_proxy/routes/acme.conf")
    for kind in ("containers", "volumes", "networks"):
        assert standin_objects(fleet, kind, "acme") == []
    assert fleet.sshd.container("odoofleet-proxy") is not None  # other instances' proxy stays
    ports = await fleet.events(ports_stream(server_id))
    assert isinstance(ports[-1], PortsReleased)
    slug = await fleet.events(slug_stream(ORG, "acme"))
    assert isinstance(slug[-1], SlugReleased)
    created = next(e for e in await fleet.events(instance.stream) if isinstance(e, InstanceCreated))
    fresh = Vault(fleet.pool, fleet.settings.secret_key)  # no key cached from the create
    assert await fresh.open(instance.stream, created.admin_password) == MASK


async def test_a_removal_while_the_server_is_pending_cancels_the_provisioning(
    bare_fleet: Fleet,
) -> None:
    bare_fleet.start_workers(sagas={"ProvisioningRequested", "RemovalRequested"})
    server_id = await bare_fleet.register_server()
    instance = await bare_fleet.create_instance(server_id)
    await bare_fleet.wait_step_started(instance.operation_id, "server")

    teardown = await bare_fleet.remove(instance, cancels=instance.operation_id)
    await bare_fleet.wait_for(instance.stream, InstanceRemoved)

    provisioning = await bare_fleet.operation(instance.operation_id)
    assert isinstance(provisioning[-1], OperationCancelled)
    # Nothing was made on the server, so nothing is taken down over SSH.
    assert steps_of(await bare_fleet.operation(teardown), OperationStepCompleted) == [
        "release",
        "forget-secrets",
    ]
    assert bare_fleet.sshd.calls() == []


async def test_a_removal_during_provisioning_stops_it_and_takes_down_what_it_made(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    fleet.sshd.arm("hang:inspect")  # the provisioning hangs in its db-healthy step
    instance = await fleet.create_instance(server_id)
    await fleet.wait_step_started(instance.operation_id, "db-healthy")

    await fleet.remove(instance, cancels=instance.operation_id)
    await fleet.wait_for(f"operation-{instance.operation_id}", OperationCancelled)
    fleet.sshd.disarm("hang:inspect")
    kill_hung_standins(fleet.sshd)
    await fleet.wait_for(instance.stream, InstanceRemoved)

    events = await fleet.events(instance.stream)
    assert not any(isinstance(e, InstanceProvisioned) for e in events)
    assert standin_objects(fleet, "containers", "acme") == []
    assert standin_objects(fleet, "volumes", "acme") == []
    assert not exists(f"{fleet.root}/acme")


async def test_a_failing_teardown_is_retried_by_the_worker_then_abandoned(fleet: Fleet) -> None:
    """No DELETE is needed to unstick a failed teardown: each failed attempt is recorded
    (the instance stays removing), the worker tries again, and once its retries are used up
    the removal is abandoned with the reason (the instance is failed)."""
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)
    fleet.sshd.arm("nginx-test")

    operation_id = await fleet.remove(instance)
    abandoned = await fleet.wait_for(instance.stream, RemovalAbandoned, InstanceRemoved)

    assert isinstance(abandoned, RemovalAbandoned), abandoned
    assert (abandoned.operation_id, abandoned.step) == (operation_id, "remove-route")
    assert "nginx rejected" in abandoned.message
    failures = [e for e in await fleet.events(instance.stream) if isinstance(e, RemovalFailed)]
    assert [f.step for f in failures] == ["remove-route"]  # one retry in QUICK
    operation = await fleet.operation(operation_id)
    attempts = [e for e in operation if isinstance(e, OperationStepStarted)]
    assert [(a.step, a.attempt) for a in attempts] == [
        ("final-backup", 1),
        ("remove-route", 1),
        ("remove-route", 2),
    ]
    assert isinstance(operation[-1], OperationFailed)


async def test_a_teardown_whose_failure_clears_completes_without_a_new_delete(
    bare_fleet: Fleet,
) -> None:
    bare_fleet.start_workers(config=msgspec.structs.replace(QUICK, removal_retries=(5.0, 5.0)))
    server_id = await bare_fleet.register_server()
    instance = await bare_fleet.create_instance(server_id)
    await bare_fleet.wait_for(instance.stream, InstanceProvisioned)
    bare_fleet.sshd.arm("nginx-test")

    operation_id = await bare_fleet.remove(instance)

    async def failed_once() -> bool:
        return any(isinstance(e, RemovalFailed) for e in await bare_fleet.events(instance.stream))

    await eventually(failed_once, timeout=30, interval=0.05, message="a failed attempt")
    bare_fleet.sshd.disarm("nginx-test")
    removed = await bare_fleet.wait_for(instance.stream, InstanceRemoved, RemovalAbandoned)

    assert isinstance(removed, InstanceRemoved), removed
    assert removed.operation_id == operation_id
    assert steps_of(await bare_fleet.operation(operation_id), OperationStepCompleted) == TEARDOWN
    assert standin_objects(bare_fleet, "containers", "acme") == []


async def test_removing_an_instance_leaves_one_whose_slug_extends_its_own(fleet: Fleet) -> None:
    """`acme-blue`'s containers start with `acme-blue-`, like `acme`'s blue colour: the
    verification looks for exact names, so it neither fails on them nor counts them as left."""
    server_id = await fleet.register_server()
    acme = await fleet.create_instance(server_id, slug="acme")
    neighbour = await fleet.create_instance(server_id, slug="acme-blue")
    await fleet.wait_for(acme.stream, InstanceProvisioned)
    await fleet.wait_for(neighbour.stream, InstanceProvisioned)

    await fleet.remove(acme)
    removed = await fleet.wait_for(acme.stream, InstanceRemoved, RemovalAbandoned)

    assert isinstance(removed, InstanceRemoved), removed
    assert fleet.sshd.container("acme-blue-blue-odoo-1")["State"]["Status"] == "running"
    assert fleet.sshd.container("acme-blue-ports")["State"]["Status"] == "running"
