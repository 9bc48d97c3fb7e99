"""The instance decider, given / when / then over events, with no database."""

from __future__ import annotations

import pytest
from builders import ID, NOW, SERVER, create_command, created_instance, provisioned_instance

from commands.instance import (
    ControlInstance,
    DeleteInstance,
    UpdateInstance,
    decide,
)
from commands.instance_state import evolve, initial_state
from commands.refusals import ActionNotAllowed, InstanceNotFound
from commands.runner import folder
from events.instance import (
    ActionFailed,
    ActionRequested,
    InstanceCreated,
    InstanceRemoved,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    ProvisioningRequested,
    RemovalFailed,
    RemovalRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed

fold = folder(initial_state(), evolve)


def stopped() -> list[DomainEvent]:
    return [
        *provisioned_instance(),
        ActionRequested(instance_id=ID, action="stop", operation_id="op-stop"),
        InstanceStopped(instance_id=ID, operation_id="op-stop"),
    ]


def failed() -> list[DomainEvent]:
    failure = ProvisioningFailed(
        instance_id=ID, operation_id="op-provision", step="db", message="boom"
    )
    return [*created_instance(), failure]


def removing() -> list[DomainEvent]:
    return [*provisioned_instance(), RemovalRequested(instance_id=ID, operation_id="op-rm")]


def removed() -> list[DomainEvent]:
    return [*removing(), InstanceRemoved(instance_id=ID, operation_id="op-rm")]


def control(action: str) -> ControlInstance:
    return ControlInstance(action=action, operation_id="op-2")  # type: ignore[arg-type]


def test_creating_an_instance_records_it_and_requests_provisioning() -> None:
    events = decide(create_command(), initial_state(), NOW)

    assert [type(e) for e in events] == [InstanceCreated, ProvisioningRequested]
    assert isinstance(events[0], InstanceCreated)
    assert events[0].created_at == NOW
    assert events[0].http_port_host == 20000
    assert events[1] == ProvisioningRequested(
        instance_id=ID, server_id=SERVER, operation_id="op-provision"
    )


def test_an_instance_cannot_be_created_twice() -> None:
    with pytest.raises(ActionNotAllowed):
        decide(create_command(), fold(created_instance()), NOW)


def test_a_new_instance_is_creating_until_provisioned() -> None:
    assert fold(created_instance()).status == "creating"
    assert fold(provisioned_instance()).status == "running"
    assert fold(failed()).status == "failed"


@pytest.mark.parametrize(
    ("history", "action"),
    [
        (stopped, "start"),
        (failed, "start"),
        (provisioned_instance, "stop"),
        (provisioned_instance, "restart"),
        (failed, "restart"),
    ],
)
def test_an_allowed_action_is_requested(history: object, action: str) -> None:
    state = fold(history())  # type: ignore[operator]

    events = decide(control(action), state, NOW)

    assert events == [ActionRequested(instance_id=ID, action=action, operation_id="op-2")]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("history", "action", "status"),
    [
        (provisioned_instance, "start", "running"),
        (created_instance, "start", "creating"),
        (stopped, "stop", "stopped"),
        (failed, "stop", "failed"),
        (stopped, "restart", "stopped"),
        (created_instance, "restart", "creating"),
        (removing, "start", "removing"),
    ],
)
def test_an_action_from_a_status_it_is_not_allowed_from_is_refused(
    history: object, action: str, status: str
) -> None:
    with pytest.raises(ActionNotAllowed) as refusal:
        decide(control(action), fold(history()), NOW)  # type: ignore[operator]

    assert (refusal.value.action, refusal.value.status) == (action, status)


def test_an_action_in_progress_blocks_another() -> None:
    starting = [*stopped(), ActionRequested(instance_id=ID, action="start", operation_id="s")]

    with pytest.raises(ActionNotAllowed):
        decide(control("stop"), fold(starting), NOW)


def test_a_completed_start_makes_the_instance_running_again() -> None:
    history = [
        *stopped(),
        ActionRequested(instance_id=ID, action="start", operation_id="s"),
        InstanceStarted(instance_id=ID, operation_id="s"),
    ]

    assert fold(history).status == "running"


def test_a_failed_action_leaves_the_instance_failed_and_restartable() -> None:
    history = [
        *provisioned_instance(),
        ActionRequested(instance_id=ID, action="restart", operation_id="r"),
        ActionFailed(instance_id=ID, operation_id="r", action="restart", step="up", message="x"),
    ]

    assert decide(control("restart"), fold(history), NOW)[0] == ActionRequested(
        instance_id=ID, action="restart", operation_id="op-2"
    )


def test_deleting_requests_removal() -> None:
    events = decide(DeleteInstance(operation_id="op-rm"), fold(provisioned_instance()), NOW)

    assert events == [RemovalRequested(instance_id=ID, operation_id="op-rm")]


def test_deleting_while_creating_cancels_the_provisioning() -> None:
    events = decide(DeleteInstance(operation_id="op-rm"), fold(created_instance()), NOW)

    assert events == [
        RemovalRequested(instance_id=ID, operation_id="op-rm", cancels_operation_id="op-provision")
    ]


def test_deleting_again_while_removing_records_nothing() -> None:
    assert decide(DeleteInstance(operation_id="op-rm2"), fold(removing()), NOW) == []


def test_deleting_again_after_a_failed_teardown_retries_it() -> None:
    history = [
        *removing(),
        RemovalFailed(instance_id=ID, operation_id="op-rm", step="db-down", message="timeout"),
    ]

    events = decide(DeleteInstance(operation_id="op-rm2"), fold(history), NOW)

    assert events == [RemovalRequested(instance_id=ID, operation_id="op-rm2")]
    assert fold([*history, *events]).status == "removing"


@pytest.mark.parametrize(
    "command",
    [
        DeleteInstance(operation_id="x"),
        ControlInstance(action="start", operation_id="x"),
        UpdateInstance(name="x"),
    ],
)
def test_a_removed_or_unknown_instance_is_not_found(command: object) -> None:
    for history in (removed(), []):
        with pytest.raises(InstanceNotFound):
            decide(command, fold(history), NOW)  # type: ignore[arg-type]


def test_a_late_operation_result_does_not_revive_a_removing_instance() -> None:
    history = [*removing(), InstanceStopped(instance_id=ID, operation_id="op-stop")]

    assert fold(history).status == "removing"


def test_an_update_records_only_what_changed() -> None:
    command = UpdateInstance(name="Acme 2", addons_path=None, mcp_write_enabled=False)

    events = decide(command, fold(provisioned_instance()), NOW)

    assert events == [InstanceUpdated(instance_id=ID, name="Acme 2", updated_at=NOW)]


def test_an_update_that_changes_nothing_records_nothing() -> None:
    command = UpdateInstance(name="Acme", mcp_write_enabled=False)

    assert decide(command, fold(provisioned_instance()), NOW) == []


def test_new_env_vars_are_recorded_sealed() -> None:
    command = UpdateInstance(env_vars={"B": Sealed("v1:b")})

    events = decide(command, fold(provisioned_instance()), NOW)

    assert events == [
        InstanceUpdated(instance_id=ID, env_vars={"B": Sealed("v1:b")}, updated_at=NOW)
    ]


def test_an_update_is_folded_into_the_state() -> None:
    history = [
        *provisioned_instance(),
        InstanceUpdated(instance_id=ID, name="Renamed", updated_at=NOW),
    ]

    assert decide(UpdateInstance(name="Renamed"), fold(history), NOW) == []


def test_an_instance_being_removed_cannot_be_updated() -> None:
    with pytest.raises(ActionNotAllowed):
        decide(UpdateInstance(name="x"), fold(removing()), NOW)
