"""Removal that fails, is retried, is given up, and is forced: the instance decider, given /
when / then over events."""

from __future__ import annotations

import pytest
from builders import ID, NOW, provisioned_instance

from commands.instance import ControlInstance, DeleteInstance, ForceRemoval, decide
from commands.instance_state import evolve, initial_state
from commands.refusals import ActionNotAllowed, InstanceNotFound, RemovalNotFailed
from commands.runner import folder
from events.instance import (
    InstanceRemovalForced,
    InstanceRemoved,
    RemovalAbandoned,
    RemovalFailed,
    RemovalRequested,
)
from events.registry import DomainEvent

fold = folder(initial_state(), evolve)


def removing() -> list[DomainEvent]:
    return [*provisioned_instance(), RemovalRequested(instance_id=ID, operation_id="op-rm")]


def removal_failed() -> list[DomainEvent]:
    failure = RemovalFailed(instance_id=ID, operation_id="op-rm", step="db-down", message="timeout")
    return [*removing(), failure]


def removal_abandoned() -> list[DomainEvent]:
    given_up = RemovalAbandoned(
        instance_id=ID, operation_id="op-rm", step="db-down", message="timeout"
    )
    return [*removal_failed(), given_up]


def test_a_failed_teardown_leaves_the_instance_removing() -> None:
    assert fold(removal_failed()).status == "removing"


def test_a_teardown_given_up_leaves_the_instance_failed() -> None:
    assert fold(removal_abandoned()).status == "failed"


@pytest.mark.parametrize("action", ["start", "restart"])
def test_an_instance_whose_removal_was_given_up_cannot_be_started(action: str) -> None:
    with pytest.raises(ActionNotAllowed):
        decide(ControlInstance(action=action, operation_id="x"), fold(removal_abandoned()), NOW)  # type: ignore[arg-type]


def test_deleting_an_instance_whose_removal_was_given_up_tries_again() -> None:
    events = decide(DeleteInstance(operation_id="op-rm2"), fold(removal_abandoned()), NOW)

    assert events == [RemovalRequested(instance_id=ID, operation_id="op-rm2")]
    assert fold([*removal_abandoned(), *events]).status == "removing"


@pytest.mark.parametrize("history", [removal_failed, removal_abandoned])
def test_a_failed_removal_can_be_forced(history: object) -> None:
    events = decide(ForceRemoval(), fold(history()), NOW)  # type: ignore[operator]

    assert events == [
        InstanceRemovalForced(instance_id=ID, failure="db-down: timeout", forced_at=NOW)
    ]
    assert fold([*history(), *events]).status == "removed"  # type: ignore[operator]


def test_a_removal_still_running_cannot_be_forced() -> None:
    with pytest.raises(RemovalNotFailed) as refusal:
        decide(ForceRemoval(), fold(removing()), NOW)

    assert "a removal is running" in str(refusal.value)


def test_an_instance_not_being_removed_cannot_be_forced() -> None:
    with pytest.raises(RemovalNotFailed):
        decide(ForceRemoval(), fold(provisioned_instance()), NOW)


def test_a_retried_teardown_must_fail_again_before_it_can_be_forced() -> None:
    history = [*removal_failed(), RemovalRequested(instance_id=ID, operation_id="op-rm2")]

    with pytest.raises(RemovalNotFailed):
        decide(ForceRemoval(), fold(history), NOW)


def test_a_forced_removal_is_not_forced_again() -> None:
    forced = InstanceRemovalForced(instance_id=ID, failure="x", forced_at=NOW)

    with pytest.raises(InstanceNotFound):
        decide(ForceRemoval(), fold([*removal_failed(), forced]), NOW)


def test_a_teardown_finishing_after_a_forced_removal_changes_nothing() -> None:
    forced = InstanceRemovalForced(instance_id=ID, failure="x", forced_at=NOW)
    late = InstanceRemoved(instance_id=ID, operation_id="op-rm")

    assert fold([*removal_failed(), forced, late]).status == "removed"
