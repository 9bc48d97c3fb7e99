"""The validation saga's reactions and the commands it gives the server's decider, given /
when / then over the server's events, with no sshd and no database."""

from __future__ import annotations

import uuid

from builders import NOW, SERVER, registered_server

from commands.outcome import FailedAt, Succeeded
from commands.runner import folder
from commands.server import (
    PinHostKey,
    RecordServerValidated,
    RecordServerValidationFailed,
    ServerOutcome,
    decide,
)
from commands.server_state import evolve, initial_state
from events.registry import DomainEvent
from events.server import ServerDeleted, ServerRegistered, ServerValidationRequested
from workers.sagas.operation_log import StepFailed
from workers.sagas.validation import (
    SERVER_DELETED,
    Cancel,
    Close,
    Validate,
    failed,
    operation_for,
    react,
    validated,
)
from workers.server.facts import ServerFacts
from workers.ssh.errors import ServerUnreachable

EVENT_ID = "0b8e6a52-3c1d-4e2f-9a7b-5c6d7e8f9a0b"
fold = folder(initial_state(), evolve)


def recorded(history: list[DomainEvent], command: ServerOutcome) -> list[DomainEvent]:
    return [*history, *decide(command, fold(history), NOW)]


def facts(docker: str | None = "27.3.1") -> ServerFacts:
    return ServerFacts(
        os_name="Debian",
        os_version="12",
        cpu_cores=2,
        ram_total_bytes=4 << 30,
        ram_available_bytes=2 << 30,
        disk_total_bytes=50 << 30,
        disk_free_bytes=20 << 30,
        docker_access=True,
        docker_version=docker,
        docker_error=None,
        compose_version="2.29.7",
        user="deploy",
        groups=("docker",),
        root_writable=True,
    )


def failure_from(cause: Exception | None) -> StepFailed:
    failure = StepFailed("connect", "no answer")
    failure.__cause__ = cause
    return failure


def test_a_requested_validation_runs_its_steps() -> None:
    assert react(fold(registered_server()), "op-validate") == Validate()


def test_a_validation_whose_outcome_is_recorded_only_closes_its_log() -> None:
    history = recorded(registered_server(), validated("op-validate", facts()))

    assert react(fold(history), "op-validate") == Close(Succeeded())


def test_a_failed_validation_s_redelivery_closes_its_log_as_failed() -> None:
    failure = RecordServerValidationFailed(operation_id="op-validate", status="error", message="x")

    history = recorded(registered_server(), failure)

    assert react(fold(history), "op-validate") == Close(FailedAt(None, "x"))


def test_another_operation_s_outcome_does_not_close_this_one() -> None:
    history = recorded(registered_server(), validated("op-1", facts()))

    assert react(fold(history), "op-2") == Validate()


def test_a_validation_of_a_deleted_server_is_cancelled() -> None:
    history = [*registered_server(), ServerDeleted(server_id=SERVER)]

    assert react(fold(history), "op-validate") == Cancel(SERVER_DELETED)


def test_a_validation_of_an_unknown_server_is_cancelled() -> None:
    assert isinstance(react(fold([]), "op-validate"), Cancel)


def test_a_validation_request_names_its_operation() -> None:
    request = ServerValidationRequested(server_id=SERVER, operation_id="op-2")

    assert operation_for(request, EVENT_ID, fold(registered_server())) == "op-2"


def test_a_registration_that_requested_a_validation_asks_for_none_itself() -> None:
    [registration, _] = registered_server()

    assert operation_for(registration, EVENT_ID, fold(registered_server())) is None


def test_a_registration_from_before_requests_gets_an_operation_from_its_event_id() -> None:
    [registration, _] = registered_server()
    assert isinstance(registration, ServerRegistered)

    first = operation_for(registration, EVENT_ID, fold([registration]))

    assert first is not None
    assert uuid.UUID(first)
    assert operation_for(registration, EVENT_ID, fold([registration])) == first


def test_the_facts_seen_become_the_validated_command() -> None:
    command = validated("op-validate", facts(docker=None))

    assert command == RecordServerValidated(
        operation_id="op-validate",
        os_name="Debian",
        os_version="12",
        cpu_cores=2,
        ram_total_bytes=4 << 30,
        disk_free_bytes=20 << 30,
        docker_version="",
        compose_version="2.29.7",
    )


def test_a_server_that_could_not_be_reached_fails_as_unreachable() -> None:
    command = failed("op-validate", failure_from(ServerUnreachable("refused")), "masked")

    assert command == RecordServerValidationFailed(
        operation_id="op-validate", status="unreachable", message="masked"
    )


def test_any_other_failure_puts_the_server_in_error() -> None:
    command = failed("op-validate", failure_from(None), "no docker")

    assert command.status == "error"
    assert fold(recorded(registered_server(), command)).status == "error"


def test_the_key_seen_first_is_pinned_once() -> None:
    pin = PinHostKey(host_key="ssh-ed25519 AAAA", fingerprint="SHA256:abc")
    once = recorded(registered_server(), pin)

    assert recorded(once, pin) == once
