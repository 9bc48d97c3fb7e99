"""What sagas and the health observer conclude about a server, decided on its stream: given /
when / then over events, with no database."""

from __future__ import annotations

import pytest
from builders import NOW, SERVER, registered_server

from commands.outcome import FailedAt, Succeeded
from commands.runner import folder
from commands.server import (
    MarkServerReachable,
    MarkServerUnreachable,
    PinHostKey,
    RecordHostKeyChanged,
    RecordServerValidated,
    RecordServerValidationFailed,
    ServerOutcome,
    decide,
)
from commands.server_state import (
    Active,
    InError,
    Pending,
    Pinned,
    Unpinned,
    Unreachable,
    evolve,
    initial_state,
)
from events.registry import DomainEvent
from events.server import (
    HostKeyPinned,
    ServerDeleted,
    ServerReachable,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKey"
fold = folder(initial_state(), evolve)


def then(history: list[DomainEvent], command: ServerOutcome) -> list[DomainEvent]:
    return [*history, *decide(command, fold(history), NOW)]


def validated_facts(operation_id: str = "op-validate") -> RecordServerValidated:
    return RecordServerValidated(
        operation_id=operation_id,
        os_name="Debian",
        os_version="12",
        cpu_cores=4,
        ram_total_bytes=8 << 30,
        disk_free_bytes=100 << 30,
        docker_version="27.0",
        compose_version="2.29",
    )


def validated() -> list[DomainEvent]:
    pinned = then(registered_server(), PinHostKey(host_key=KEY, fingerprint="SHA256:abc"))
    return then(pinned, validated_facts())


def unreachable() -> list[DomainEvent]:
    return then(validated(), MarkServerUnreachable(message="timed out"))


def deleted() -> list[DomainEvent]:
    return [*validated(), ServerDeleted(server_id=SERVER)]


def test_the_first_key_seen_is_pinned_on_first_use() -> None:
    events = decide(
        PinHostKey(host_key=KEY, fingerprint="SHA256:abc"), fold(registered_server()), NOW
    )

    assert events == [
        HostKeyPinned(server_id=SERVER, host_key=KEY, fingerprint="SHA256:abc", trust="first-use")
    ]


def test_a_key_given_at_registration_is_pinned_as_given() -> None:
    command = PinHostKey(host_key=KEY, fingerprint="SHA256:abc")

    [pin] = decide(command, fold(registered_server(host_key=KEY)), NOW)

    assert isinstance(pin, HostKeyPinned)
    assert pin.trust == "given"


def test_a_pinned_key_is_not_pinned_again() -> None:
    again = PinHostKey(host_key="ssh-ed25519 AAAAnother", fingerprint="SHA256:def")

    assert decide(again, fold(validated()), NOW) == []
    profile = fold(validated())
    assert isinstance(profile, Active)
    assert profile.profile.host_key == Pinned(KEY, "SHA256:abc")


def test_a_registered_server_is_unpinned_with_the_key_it_was_given() -> None:
    state = fold(registered_server(host_key=KEY))

    assert isinstance(state, Pending)
    assert state.profile.host_key == Unpinned(KEY)
    assert state.profile.validation_requested


def test_a_validation_records_the_server_s_facts_at_the_decider_s_time() -> None:
    events = decide(validated_facts(), fold(registered_server()), NOW)

    assert len(events) == 1
    assert isinstance(events[0], ServerValidated)
    assert (events[0].docker_version, events[0].validated_at) == ("27.0", NOW)
    state = fold([*registered_server(), *events])
    assert isinstance(state, Active)
    assert state.profile.validations == {"op-validate": Succeeded()}


def test_a_validation_s_outcome_is_recorded_once() -> None:
    failed = RecordServerValidationFailed(operation_id="op-validate", status="error", message="x")

    assert decide(validated_facts(), fold(validated()), NOW) == []
    assert decide(failed, fold(validated()), NOW) == []


def test_a_failed_validation_puts_the_server_in_error_with_its_message() -> None:
    failed = RecordServerValidationFailed(
        operation_id="op-validate", status="error", message="no docker"
    )

    state = fold(then(registered_server(), failed))

    assert isinstance(state, InError)
    assert state.message == "no docker"
    assert state.profile.validations == {"op-validate": FailedAt(None, "no docker")}


def test_a_validation_that_could_not_connect_leaves_the_server_unreachable() -> None:
    failed = RecordServerValidationFailed(
        operation_id="op-validate", status="unreachable", message="refused"
    )

    assert fold(then(registered_server(), failed)).status == "unreachable"


def test_a_changed_host_key_puts_the_server_in_error_once() -> None:
    changed = RecordHostKeyChanged(operation_id="op-provision", message="host key changed")

    first = then(validated(), changed)

    assert first[-1] == ServerValidationFailed(
        server_id=SERVER, operation_id="op-provision", status="error", message="host key changed"
    )
    assert fold(first).status == "error"
    assert decide(changed, fold(first), NOW) == []


def test_an_active_server_that_stops_answering_is_marked_unreachable() -> None:
    events = decide(MarkServerUnreachable(message="timed out"), fold(validated()), NOW)

    assert events == [ServerUnreachable(server_id=SERVER, message="timed out", observed_at=NOW)]


def test_an_unreachable_server_is_not_marked_unreachable_again() -> None:
    assert decide(MarkServerUnreachable(message="still"), fold(unreachable()), NOW) == []


def test_an_unreachable_server_that_answers_again_is_marked_reachable() -> None:
    events = then(unreachable(), MarkServerReachable())

    assert events[-1] == ServerReachable(server_id=SERVER, observed_at=NOW)
    assert isinstance(fold(events), Active)


@pytest.mark.parametrize("history", [validated, registered_server])
def test_a_server_that_was_not_unreachable_is_not_marked_reachable(history: object) -> None:
    assert decide(MarkServerReachable(), fold(history()), NOW) == []  # type: ignore[operator]


def test_a_server_in_error_is_not_marked_unreachable_by_the_observer() -> None:
    failed = RecordServerValidationFailed(operation_id="op-2", status="error", message="no docker")

    assert decide(MarkServerUnreachable(message="x"), fold(then(validated(), failed)), NOW) == []


@pytest.mark.parametrize(
    "command",
    [
        PinHostKey(host_key=KEY, fingerprint="SHA256:abc"),
        validated_facts("op-late"),
        RecordServerValidationFailed(operation_id="op-late", status="error", message="x"),
        RecordHostKeyChanged(operation_id="op-late", message="x"),
        MarkServerUnreachable(message="x"),
        MarkServerReachable(),
    ],
)
def test_an_outcome_for_a_deleted_or_unknown_server_records_nothing(
    command: ServerOutcome,
) -> None:
    assert decide(command, fold(deleted()), NOW) == []
    assert decide(command, fold([]), NOW) == []


def test_an_unreachable_server_keeps_the_observer_s_message() -> None:
    state = fold(unreachable())

    assert isinstance(state, Unreachable)
    assert state.message == "timed out"
    assert state.profile.name == "web-1"
