"""The Odoo credentials MCP calls with, in the instance's deciders and the credentials saga's
react: given / when / then over events, no I/O."""

from __future__ import annotations

import pytest
from builders import ID, NOW, created_instance

from commands.instance import decide
from commands.instance_outcomes import (
    RecordMcpCredentialsFailed,
    RecordMcpCredentialsIssued,
    RecordProvisioned,
    decide_outcome,
)
from commands.instance_state import McpCredentials, fold, initial_state
from commands.mcp_credentials import RotateMcpCredentials
from commands.refusals import ActionNotAllowed, InstanceNotFound, OutcomeOverruled
from events.catalog import build_registry
from events.instance import (
    ActionRequested,
    InstanceProvisioned,
    InstanceStopped,
    McpCredentialsFailed,
    McpCredentialsIssued,
    McpCredentialsRequested,
    ProvisioningRequested,
    RemovalRequested,
)
from events.registry import DomainEvent, encode_event
from events.secrets import Sealed
from workers.sagas.instance_saga import Cancel, Plan
from workers.sagas.mcp_credentials import react

KEY = Sealed("v1:first-key")
NEW_KEY = Sealed("v1:new-key")
LOGIN = "odoofleet-mcp"


def provisioning_op(history: list[DomainEvent]) -> str:
    [requested] = [e for e in history if isinstance(e, ProvisioningRequested)]
    return requested.operation_id


def provisioned() -> list[DomainEvent]:
    history = created_instance()
    outcome = RecordProvisioned(operation_id=provisioning_op(history), active_color="blue")
    return [*history, *decide_outcome(outcome, fold(history), NOW)]


def issued(operation_id: str = "op-first", key: Sealed = KEY) -> McpCredentialsIssued:
    return McpCredentialsIssued(instance_id=ID, operation_id=operation_id, login=LOGIN, api_key=key)


def running_with_credentials() -> list[DomainEvent]:
    return [*provisioned(), issued()]


def test_the_first_provisionings_outcome_asks_for_mcp_credentials() -> None:
    history = created_instance()
    outcome = RecordProvisioned(operation_id=provisioning_op(history), active_color="blue")

    events = decide_outcome(outcome, fold(history), NOW)

    assert [type(e) for e in events] == [InstanceProvisioned, McpCredentialsRequested]
    # Decided again (a lost race), it asks for the same operation: one saga run, not two.
    again = decide_outcome(outcome, fold(history), NOW)
    assert events[1] == again[1]
    assert events[1].operation_id != outcome.operation_id


def test_a_provisioning_of_an_instance_that_has_credentials_asks_for_none() -> None:
    history = [
        *created_instance(),
        issued(),  # e.g. provisioning resumed by a start after credentials were issued
    ]
    outcome = RecordProvisioned(operation_id="op-resume", active_color="blue")

    events = decide_outcome(outcome, fold(history), NOW)

    assert [type(e) for e in events] == [InstanceProvisioned]


def test_issued_credentials_are_the_ones_in_force_and_settle_the_operation() -> None:
    history = provisioned()
    request = RecordMcpCredentialsIssued(operation_id="op-first", login=LOGIN, api_key=KEY)

    events = decide_outcome(request, fold(history), NOW)

    assert events == [issued()]
    facts = fold([*history, *events]).facts
    assert facts.mcp_credentials == McpCredentials(login=LOGIN, api_key=KEY)
    # Recorded once: the saga's closing send of the same outcome decides nothing.
    assert decide_outcome(request, fold([*history, *events]), NOW) == []


def test_a_rotation_of_a_running_instance_asks_for_new_credentials() -> None:
    events = decide(RotateMcpCredentials(operation_id="op-rotate"), fold(provisioned()), NOW)

    assert events == [McpCredentialsRequested(instance_id=ID, operation_id="op-rotate")]


def stopped() -> list[DomainEvent]:
    return [
        *running_with_credentials(),
        ActionRequested(instance_id=ID, action="stop", operation_id="s"),
        InstanceStopped(instance_id=ID, operation_id="s"),
    ]


@pytest.mark.parametrize("history", [created_instance, stopped], ids=["creating", "stopped"])
def test_a_rotation_of_an_instance_not_running_is_refused(history: object) -> None:
    assert callable(history)
    with pytest.raises(ActionNotAllowed, match="rotate the MCP credentials"):
        decide(RotateMcpCredentials(operation_id="op-rotate"), fold(history()), NOW)


def test_a_rotation_of_an_unknown_instance_is_not_found() -> None:
    with pytest.raises(InstanceNotFound):
        decide(RotateMcpCredentials(operation_id="op-rotate"), initial_state(), NOW)


def test_a_rotation_replaces_the_key_and_a_failed_one_keeps_the_old() -> None:
    history = [
        *running_with_credentials(),
        McpCredentialsRequested(instance_id=ID, operation_id="op-2"),
    ]
    failed = RecordMcpCredentialsFailed(operation_id="op-2", step="issue-key", message="boom")
    after_failure = [*history, *decide_outcome(failed, fold(history), NOW)]
    assert fold(after_failure).facts.mcp_credentials == McpCredentials(login=LOGIN, api_key=KEY)
    assert isinstance(after_failure[-1], McpCredentialsFailed)
    assert fold(after_failure).status == "running"

    history = [*after_failure, McpCredentialsRequested(instance_id=ID, operation_id="op-3")]
    rotated = RecordMcpCredentialsIssued(operation_id="op-3", login=LOGIN, api_key=NEW_KEY)
    after = [*history, *decide_outcome(rotated, fold(history), NOW)]
    assert fold(after).facts.mcp_credentials == McpCredentials(login=LOGIN, api_key=NEW_KEY)


def test_credentials_issued_after_removal_was_asked_for_are_overruled() -> None:
    history = [
        *provisioned(),
        McpCredentialsRequested(instance_id=ID, operation_id="op-late"),
        RemovalRequested(instance_id=ID, operation_id="op-remove"),
    ]
    late = RecordMcpCredentialsIssued(operation_id="op-late", login=LOGIN, api_key=KEY)

    with pytest.raises(OutcomeOverruled):
        decide_outcome(late, fold(history), NOW)


def test_the_saga_cancels_for_an_instance_being_removed_and_plans_one_step_otherwise() -> None:
    request = McpCredentialsRequested(instance_id=ID, operation_id="op-rotate")
    removing = [*provisioned(), RemovalRequested(instance_id=ID, operation_id="op-remove")]

    state = fold(removing)
    assert state.status != "absent"
    assert isinstance(react(request, state), Cancel)  # type: ignore[arg-type]
    planned = react(request, fold(provisioned()))  # type: ignore[arg-type]
    assert isinstance(planned, Plan)
    failed = planned.failed("issue-key", "no key")
    assert failed == RecordMcpCredentialsFailed(
        operation_id="op-rotate", step="issue-key", message="no key"
    )


def test_the_sealed_key_is_all_the_issued_event_carries_and_it_decodes() -> None:
    encoded = encode_event(issued())
    assert "first-key" in encoded  # the sealed form only; the plaintext never reaches events
    registry = build_registry()
    for event in (issued(), McpCredentialsRequested(instance_id=ID, operation_id="o")):
        assert registry.decode(type(event).__name__, 1, encoded_bytes(event)) == event


def encoded_bytes(event: DomainEvent) -> bytes:
    return encode_event(event).encode()
