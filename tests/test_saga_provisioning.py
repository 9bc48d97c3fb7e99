"""The provisioning saga against a real sshd, the stand-in docker, PostgreSQL and NATS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from typing import Any

import msgspec
import nats
from saga_fixtures import (  # noqa: F401
    ORG,
    PROVISIONING,
    Fleet,
    Instance,
    bare_fleet_fixture,
    exists,
    fleet_fixture,
    read_text,
    steps_of,
)
from waiting import eventually

from commands.instance_state import Absent, fold
from events.instance import (
    ActionFailed,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    McpCredentialsFailed,
    McpCredentialsIssued,
    ProvisioningFailed,
    RemovalAbandoned,
)
from events.metadata import EventMetadata
from events.operation import (
    OperationStarted,
    OperationStepCompleted,
    OperationSucceeded,
)
from events.publishing import headers_for, payload_for, subject_for
from events.secrets import MASK
from events.server import ServerValidated, server_stream
from events.store import EventStore, RecordedEvent
from odoofleet.settings import Settings
from workers.server.layout import InstanceLayout
from workers.ssh.runner import CommandResult, SshRunner


async def test_a_requested_instance_is_provisioned_and_serves_its_route(fleet: Fleet) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)

    started = time.monotonic()
    instance = await fleet.create_instance(server_id)
    provisioned = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    elapsed = time.monotonic() - started

    assert isinstance(provisioned, InstanceProvisioned), provisioned
    assert provisioned.active_color == "blue"
    operation = await fleet.operation(instance.operation_id)
    assert isinstance(operation[0], OperationStarted)
    assert operation[0].type == "provision"
    assert steps_of(operation, OperationStepCompleted) == PROVISIONING
    assert isinstance(operation[-1], OperationSucceeded)
    layout = InstanceLayout("acme", fleet.root)
    conf = read_text(layout.odoo_conf)
    assert "list_db = False" in conf
    assert "dbfilter = ^acme$" in conf
    assert read_text(layout.active_color) == "blue\n"
    assert "acme-blue-odoo-1" in read_text(f"{fleet.root}/_proxy/routes/acme.conf")
    assert fleet.sshd.container("acme-blue-odoo-1")["State"]["Status"] == "running"
    assert fleet.sshd.container("odoofleet-proxy")["State"]["Status"] == "running"
    print(f"ProvisioningRequested -> InstanceProvisioned: {elapsed:.2f}s")


async def test_saga_events_carry_the_request_s_org_and_correlation_and_their_cause(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)

    recorded = await fleet.store.read_stream(instance.stream)
    requested, provisioned = recorded[1], recorded[-1]
    operation = await fleet.store.read_stream(f"operation-{instance.operation_id}")
    for event in [provisioned, *operation]:
        metadata = msgspec.json.decode(event.metadata, type=EventMetadata)
        assert metadata.actor.kind == "system"
        assert metadata.actor.id.startswith("system:")
        assert metadata.org_id == ORG
        assert metadata.correlation_id == instance.metadata.correlation_id
        assert metadata.causation_id == str(requested.event_id)


async def test_a_redelivered_request_of_a_finished_provisioning_does_nothing(
    fleet: Fleet, settings: Settings
) -> None:
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)
    calls, versions = len(fleet.sshd.calls()), await _versions(fleet.store, instance)

    requested = (await fleet.store.read_stream(instance.stream))[1]
    await publish_again(settings, requested)
    await fleet.wait_for(instance.stream, InstanceProvisioned)  # (already there)
    await drained(settings, "saga-ProvisioningRequested")

    assert fleet.sshd.calls()[calls:] == []
    assert await _versions(fleet.store, instance) == versions


async def test_outputs_are_recorded_with_the_instance_s_secrets_masked(fleet: Fleet) -> None:
    server_id = await fleet.register_server()
    # A secret that the db-healthy step's output happens to contain: the container's name.
    instance = await fleet.create_instance(server_id, env_vars={"TOKEN": "acme-db-db-1"})
    await fleet.wait_for(instance.stream, InstanceProvisioned)

    operation = await fleet.operation(instance.operation_id)
    outputs = {e.step: e.output for e in operation if isinstance(e, OperationStepCompleted)}
    assert outputs["db-healthy"] == f"{MASK} is healthy"
    assert all("acme-db-db-1" not in output for output in outputs.values())


async def test_provisioning_waits_for_a_pending_server_s_validation(bare_fleet: Fleet) -> None:
    bare_fleet.start_workers(sagas={"ProvisioningRequested"})
    server_id = await bare_fleet.register_server()
    instance = await bare_fleet.create_instance(server_id)
    await bare_fleet.wait_step_started(instance.operation_id, "server")
    assert bare_fleet.sshd.calls() == []  # nothing was sent while the server was pending

    bare_fleet.start_workers(sagas={"ServerValidationRequested"})
    provisioned = await bare_fleet.wait_for(instance.stream, InstanceProvisioned)

    assert isinstance(provisioned, InstanceProvisioned)
    events = await bare_fleet.events(server_stream(server_id))
    validated = next(i for i, e in enumerate(events) if isinstance(e, ServerValidated))
    assert validated > 0
    operation = await bare_fleet.operation(instance.operation_id)
    assert steps_of(operation, OperationStepCompleted)[0] == "server"


async def test_each_saga_takes_a_known_number_of_ssh_round_trips(bare_fleet: Fleet) -> None:
    """Issue 19: a provisioning in at most 8 SSH round trips (it was 14 commands and 13
    uploads), the other sagas in few. The stand-in's containers are ready at the first look."""
    runner = CountingRunner(command_timeout=60.0)
    bare_fleet.start_workers(runner=runner)
    server_id = await bare_fleet.register_server()
    await bare_fleet.wait_for(server_stream(server_id), ServerValidated)
    counts: dict[str, tuple[int, int]] = {}

    def since(before: tuple[int, int]) -> tuple[int, int]:
        now = runner.snapshot()
        return now[0] - before[0], now[1] - before[1]

    before = runner.snapshot()
    instance = await bare_fleet.create_instance(server_id)
    await bare_fleet.wait_for(instance.stream, InstanceProvisioned)
    await bare_fleet.wait_for(instance.stream, McpCredentialsIssued, McpCredentialsFailed)
    counts["provision + MCP credentials"] = since(before)

    async def counted(saga: str, request: Awaitable[str], *outcome: type[Any]) -> None:
        before = runner.snapshot()
        await request
        done = await bare_fleet.wait_for(instance.stream, *outcome)
        assert isinstance(done, outcome[0]), done
        counts[saga] = since(before)

    await counted(
        "redeploy", bare_fleet.redeploy(instance, "green"), InstanceRedeployed, ActionFailed
    )
    await counted("stop", bare_fleet.control(instance, "stop"), InstanceStopped, ActionFailed)
    await counted("start", bare_fleet.control(instance, "start"), InstanceStarted, ActionFailed)
    restart = bare_fleet.control(instance, "restart")
    await counted("restart", restart, InstanceRestarted, ActionFailed)
    await counted("teardown", bare_fleet.remove(instance), InstanceRemoved, RemovalAbandoned)

    print(f"SSH round trips (commands, uploads) per saga: {counts}")
    assert counts == {
        # Preflight; layout to app colour in one command; a readiness look; the route. Then
        # the MCP credentials operation: its API-user script uploaded, then run.
        "provision + MCP credentials": (4 + 1, 1),
        "redeploy": (4, 0),  # app colour, readiness look, route, old colour stopped
        "stop": (1, 0),
        "start": (2, 0),  # app colour, readiness look
        "restart": (2, 0),
        "teardown": (1, 0),
    }


class CountingRunner(SshRunner):
    def __init__(self, **kwargs: float) -> None:
        super().__init__(**kwargs)
        self.commands = self.uploads = 0

    async def run(self, *args: Any, **kwargs: Any) -> CommandResult:
        self.commands += 1
        return await super().run(*args, **kwargs)

    async def upload(self, *args: Any, **kwargs: Any) -> None:
        self.uploads += 1
        await super().upload(*args, **kwargs)

    def snapshot(self) -> tuple[int, int]:
        return self.commands, self.uploads


async def _versions(store: EventStore, instance: Instance) -> tuple[int | None, int | None]:
    return (
        await store.stream_version(instance.stream),
        await store.stream_version(f"operation-{instance.operation_id}"),
    )


async def publish_again(settings: Settings, recorded: RecordedEvent) -> None:
    """The same event once more, as a relay that died before its checkpoint would send it
    after JetStream's duplicate window (a new message id gets past the dedupe)."""
    nc = await nats.connect(settings.nats_url)
    try:
        headers = {**headers_for(recorded), "Nats-Msg-Id": str(uuid.uuid4())}
        await nc.jetstream().publish(
            subject_for(settings.subject_prefix, recorded),
            payload_for(recorded),
            stream=settings.nats_stream,
            headers=headers,
        )
    finally:
        await nc.close()


async def drained(settings: Settings, durable: str) -> None:
    """Every message of the consumer delivered and acknowledged."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()

        async def settled() -> bool:
            info = await js.consumer_info(settings.nats_stream, durable)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(settled, timeout=20, interval=0.05, message=f"{durable} drained")
    finally:
        await nc.close()


async def test_the_admin_user_gets_its_generated_password_through_odoo_shell_on_stdin(
    fleet: Fleet,
) -> None:
    """`odoo -i base` leaves the admin user with the password `admin`: provisioning sets the
    generated one with `odoo shell`, which reads the script on its standard input, so the
    password is on no command line (and the script's file is gone afterwards)."""
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)

    argvs = fleet.sshd.docker_argvs()
    shells = [a for a in argvs if "shell" in a]
    assert len(shells) == 1
    assert shells[0][shells[0].index("run") :][-5:] == ["odoo", "shell", "-d", "acme", "--no-http"]
    assert all(instance.admin_user_password not in " ".join(a) for a in argvs)
    assert not exists(InstanceLayout("acme", fleet.root).admin_password_script)
    operation = await fleet.operation(instance.operation_id)
    outputs = {e.step: e.output for e in operation if isinstance(e, OperationStepCompleted)}
    assert outputs["admin-password"] == "the password of the admin user of acme is set"


async def test_a_rotation_sets_the_new_admin_password_in_the_running_colour(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server()
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)
    # The MCP credentials operation that follows provisioning also runs `odoo shell`.
    await fleet.wait_for(instance.stream, McpCredentialsIssued, McpCredentialsFailed)
    earlier = len(fleet.sshd.docker_argvs())
    new_password = f"rotated-{uuid.uuid4().hex}"
    sealed = await fleet.vault.seal(instance.stream, new_password)

    await fleet.request(instance, AdminPasswordRotationRequested, admin_user_password=sealed)
    rotated = await fleet.wait_for(
        instance.stream, AdminPasswordRotated, AdminPasswordRotationFailed
    )

    assert isinstance(rotated, AdminPasswordRotated), rotated
    argvs = fleet.sshd.docker_argvs()
    execs = [a for a in argvs[earlier:] if a[1:4] == ["exec", "-i", "acme-blue-odoo-1"]]
    assert len(execs) == 1
    assert execs[0][-4:] == ["shell", "-d", "acme", "--no-http"]
    assert all(new_password not in " ".join(a) for a in argvs)
    state = fold(await fleet.events(instance.stream))
    assert not isinstance(state, Absent)
    assert state.facts.admin_user_password == sealed


async def test_a_new_instance_does_not_recreate_the_proxy_under_the_others(fleet: Fleet) -> None:
    """The proxy publishes only its own port; a new instance changes it by config and a
    reload. Recreating it cost every other instance ~300 ms of refused connections."""
    server_id = await fleet.register_server()
    first = await fleet.create_instance(server_id, slug="first")
    await fleet.wait_for(first.stream, InstanceProvisioned)
    proxy = fleet.sshd.container("odoofleet-proxy")
    assert proxy is not None
    before = len(fleet.sshd.docker_argvs())

    second = await fleet.create_instance(server_id, slug="second")
    await fleet.wait_for(second.stream, InstanceProvisioned)

    later = fleet.sshd.docker_argvs()[before:]
    assert not [a for a in later if "odoofleet-proxy" in a and "up" in a]
    assert ["docker", "exec", "odoofleet-proxy", "nginx", "-s", "reload"] in later
    assert fleet.sshd.container("odoofleet-proxy")["Id"] == proxy["Id"]
    assert fleet.sshd.container("second-ports")["State"]["Status"] == "running"
