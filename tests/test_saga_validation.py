"""Server validation: the host key pinned (given, or trusted on first use), Docker checked and
the server's facts recorded, the proxy running; a changed host key refuses everything."""

from __future__ import annotations

from loopback_fixtures import loopback_settings_fixture  # noqa: F401
from saga_fixtures import Fleet, bare_fleet_fixture, fleet_fixture, steps_of  # noqa: F401
from sshd_harness import free_port
from waiting import eventually

from events.instance import (
    ActionFailed,
    InstanceProvisioned,
    McpCredentialsFailed,
    McpCredentialsIssued,
    ProvisioningFailed,
)
from events.operation import OperationStarted, OperationStepCompleted
from events.server import (
    HostKeyPinned,
    ServerValidated,
    ServerValidationFailed,
    server_stream,
)
from workers.ssh.hostkeys import fingerprint


async def test_the_first_validation_pins_the_key_it_sees_and_records_the_facts(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server(pin=False)

    validated = await fleet.wait_for(
        server_stream(server_id), ServerValidated, ServerValidationFailed
    )

    assert isinstance(validated, ServerValidated), validated
    pinned = await fleet.wait_for(server_stream(server_id), HostKeyPinned)
    assert pinned.trust == "first-use"
    assert pinned.fingerprint == fingerprint(fleet.sshd.host_key_line)
    assert validated.docker_version == "27.3.1"
    assert validated.compose_version == "2.29.7"
    assert validated.cpu_cores >= 1
    assert validated.ram_total_bytes > 0
    assert validated.disk_free_bytes > 0
    assert validated.os_name != "unknown"
    assert fleet.sshd.container("odoofleet-proxy")["State"]["Status"] == "running"
    operation = await fleet.operation(validated.operation_id)
    assert isinstance(operation[0], OperationStarted)
    assert (operation[0].type, operation[0].instance_id) == ("validate", None)
    assert steps_of(operation, OperationStepCompleted) == ["connect", "facts", "proxy"]


async def test_a_key_given_at_registration_is_pinned_once_a_connection_proved_it(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server(pin=True)

    await fleet.wait_for(server_stream(server_id), ServerValidated)

    pinned = await fleet.wait_for(server_stream(server_id), HostKeyPinned)
    assert pinned.trust == "given"
    assert pinned.fingerprint == fingerprint(fleet.sshd.host_key_line)


async def test_a_server_whose_port_is_closed_is_unreachable(fleet: Fleet) -> None:
    server_id = await fleet.register_server(port=free_port())

    failed = await fleet.wait_for(server_stream(server_id), ServerValidationFailed)

    assert failed.status == "unreachable"
    assert "connection refused" in failed.message


async def test_a_user_who_may_not_use_docker_puts_the_server_in_error(fleet: Fleet) -> None:
    fleet.sshd.arm("docker-access")
    server_id = await fleet.register_server()

    failed = await fleet.wait_for(server_stream(server_id), ServerValidationFailed)

    assert failed.status == "error"
    assert "cannot use Docker" in failed.message
    assert "permission denied" in failed.message


async def test_a_changed_host_key_refuses_every_operation_and_puts_the_server_in_error(
    fleet: Fleet,
) -> None:
    server_id = await fleet.register_server(pin=False)
    instance = await fleet.create_instance(server_id)
    await fleet.wait_for(instance.stream, InstanceProvisioned)
    # The MCP credentials that follow provisioning run on the connection already open: once
    # they are settled, nothing of the old server's is in flight when its key changes.
    await fleet.wait_for(instance.stream, McpCredentialsIssued, McpCredentialsFailed)
    old = fingerprint(fleet.sshd.host_key_line)
    fleet.sshd.restart_with_new_host_key()
    new = fingerprint(fleet.sshd.host_key_line)
    calls = len(fleet.sshd.calls())

    await fleet.control(instance, "stop")
    failed = await fleet.wait_for(instance.stream, ActionFailed)

    assert (failed.action, failed.step) == ("stop", "app-stop")
    assert old in failed.message
    assert new in failed.message
    error = await fleet.wait_for(server_stream(server_id), ServerValidationFailed)
    assert error.status == "error"
    assert old in error.message
    assert new in error.message
    assert len(fleet.sshd.calls()) == calls  # nothing ran on the impostor

    operation_id = await fleet.request_validation(server_id)

    async def revalidated() -> list[ServerValidationFailed]:
        events = await fleet.events(server_stream(server_id))
        return [
            e
            for e in events
            if isinstance(e, ServerValidationFailed) and e.operation_id == operation_id
        ]

    await eventually(revalidated, timeout=20)
    (again,) = await revalidated()
    assert again.status == "error"
    assert new in again.message
    assert len(fleet.sshd.calls()) == calls


async def test_an_instance_on_a_server_in_error_fails_to_provision(fleet: Fleet) -> None:
    fleet.sshd.arm("docker-access")
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidationFailed)

    instance = await fleet.create_instance(server_id)
    failed = await fleet.wait_for(instance.stream, ProvisioningFailed)

    assert failed.step == "server"
    assert "is in error" in failed.message
