"""The server decider, given / when / then over events, with no database."""

from __future__ import annotations

import msgspec
import pytest
from builders import NOW, SERVER, register_server, registered_server

from commands.refusals import ServerHasInstances, ServerNotFound, ServerNotUsable
from commands.runner import folder
from commands.server import (
    DeleteServer,
    ValidateServer,
    decide,
    ensure_can_host,
)
from commands.server_state import evolve, initial_state
from events.catalog import build_registry
from events.registry import DomainEvent, encode_event
from events.secrets import Sealed
from events.server import (
    ServerDeleted,
    ServerReachable,
    ServerRegistered,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
    ServerValidationRequested,
)

fold = folder(initial_state(), evolve)


def validated() -> list[DomainEvent]:
    return [
        *registered_server(),
        ServerValidated(
            server_id=SERVER,
            operation_id="op-validate",
            os_name="Ubuntu",
            os_version="24.04",
            cpu_cores=4,
            ram_total_bytes=8 << 30,
            disk_free_bytes=100 << 30,
            docker_version="27.0",
            compose_version="2.29",
            validated_at=NOW,
        ),
    ]


def in_error() -> list[DomainEvent]:
    failure = ServerValidationFailed(
        server_id=SERVER, operation_id="op-validate", status="error", message="no docker"
    )
    return [*registered_server(), failure]


def deleted() -> list[DomainEvent]:
    return [*validated(), ServerDeleted(server_id=SERVER)]


def test_registering_a_server_records_it_and_requests_validation() -> None:
    events = registered_server()

    assert [type(e) for e in events] == [ServerRegistered, ServerValidationRequested]
    assert isinstance(events[0], ServerRegistered)
    assert events[0].created_at == NOW
    assert events[0].ssh_private_key == Sealed("v1:key")
    assert events[1] == ServerValidationRequested(server_id=SERVER, operation_id="op-validate")


def test_a_registered_server_is_pending_until_validated() -> None:
    assert fold(registered_server()).status == "pending"
    assert fold(validated()).status == "active"
    assert fold(in_error()).status == "error"


def test_an_unreachable_server_becomes_active_when_reachable_again() -> None:
    lost = [*validated(), ServerUnreachable(server_id=SERVER, message="timeout", observed_at=NOW)]

    assert fold(lost).status == "unreachable"
    assert fold([*lost, ServerReachable(server_id=SERVER, observed_at=NOW)]).status == "active"


def test_validation_can_be_requested_again() -> None:
    events = decide(ValidateServer(operation_id="op-2"), fold(in_error()), NOW)

    assert events == [ServerValidationRequested(server_id=SERVER, operation_id="op-2")]


def test_a_server_without_instances_can_be_deleted() -> None:
    events = decide(DeleteServer(live_instances=0), fold(validated()), NOW)

    assert events == [ServerDeleted(server_id=SERVER)]


def test_a_server_with_live_instances_cannot_be_deleted() -> None:
    with pytest.raises(ServerHasInstances) as refusal:
        decide(DeleteServer(live_instances=2), fold(validated()), NOW)

    assert refusal.value.count == 2


@pytest.mark.parametrize(
    "command", [DeleteServer(live_instances=0), ValidateServer(operation_id="x")]
)
def test_a_deleted_or_unknown_server_is_not_found(command: object) -> None:
    for history in (deleted(), []):
        with pytest.raises(ServerNotFound):
            decide(command, fold(history), NOW)  # type: ignore[arg-type]


def test_instances_may_be_placed_on_a_pending_or_active_server() -> None:
    ensure_can_host(fold(registered_server()))
    ensure_can_host(fold(validated()))


@pytest.mark.parametrize("history", [in_error, deleted, list])
def test_instances_may_not_be_placed_on_a_server_in_error_deleted_or_unknown(
    history: object,
) -> None:
    with pytest.raises(ServerNotUsable):
        ensure_can_host(fold(history()))  # type: ignore[operator]


def test_registering_records_whether_host_ports_are_public() -> None:
    public = msgspec.structs.replace(register_server(), public_host_ports=True)

    [private_event, _] = registered_server()
    [public_event, _] = decide(public, initial_state(), NOW)

    assert isinstance(private_event, ServerRegistered)
    assert isinstance(public_event, ServerRegistered)
    assert (private_event.public_host_ports, public_event.public_host_ports) == (False, True)


def test_a_server_registered_event_of_version_1_reads_with_private_host_ports() -> None:
    [event, _] = registered_server()
    data = msgspec.json.decode(encode_event(event))
    del data["public_host_ports"]

    decoded = build_registry().decode("ServerRegistered", 1, msgspec.json.encode(data))

    assert isinstance(decoded, ServerRegistered)
    assert decoded.public_host_ports is False
    assert ServerRegistered.schema_version == 2
