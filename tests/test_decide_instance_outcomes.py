"""The instance's decider for what its sagas concluded: given / when / then over events, no
database. An outcome is recorded once, and never after a removal overtook its operation."""

from __future__ import annotations

import pytest
from builders import ID, NOW, created_instance, provisioned_instance

from commands.instance_outcomes import (
    REMOVED,
    REMOVING,
    RecordActionFailed,
    RecordActionSucceeded,
    RecordAdminPasswordRotated,
    RecordAdminPasswordRotationFailed,
    RecordOutcome,
    RecordProvisioned,
    RecordProvisioningFailed,
    RecordRedeployed,
    RecordRemovalAbandoned,
    RecordRemovalAttemptFailed,
    RecordRemoved,
    decide_outcome,
    outcome_of,
)
from commands.instance_state import fold
from commands.outcome import FailedAt, Succeeded
from commands.refusals import InstanceNotFound, OutcomeOverruled
from events.instance import (
    ActionFailed,
    ActionRequested,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemovalForced,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    ProvisioningFailed,
    RedeployRequested,
    RemovalAbandoned,
    RemovalFailed,
    RemovalRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed

IDS = {"instance_id": ID}


def asked(action: str, operation_id: str = "op-2") -> ActionRequested:
    return ActionRequested(**IDS, action=action, operation_id=operation_id)  # type: ignore[arg-type]


def removing(*before: DomainEvent) -> list[DomainEvent]:
    return [*provisioned_instance(), *before, RemovalRequested(**IDS, operation_id="op-rm")]


def when(command: RecordOutcome, given: list[DomainEvent]) -> list[DomainEvent]:
    return decide_outcome(command, fold(given), NOW)


def test_a_provisioning_that_completed_records_the_instance_provisioned_in_blue() -> None:
    then = when(
        RecordProvisioned(operation_id="op-provision", active_color="blue"), created_instance()
    )

    # With it, the instance's first MCP credentials are asked for (commands/mcp_credentials.py).
    provisioned = InstanceProvisioned(**IDS, operation_id="op-provision", active_color="blue")
    assert then[:1] == [provisioned]
    assert [type(event).__name__ for event in then[1:]] == ["McpCredentialsRequested"]


def test_a_provisioning_that_failed_records_the_step_and_message() -> None:
    command = RecordProvisioningFailed(operation_id="op-provision", step="db-up", message="boom")

    then = when(command, created_instance())

    assert then == [
        ProvisioningFailed(**IDS, operation_id="op-provision", step="db-up", message="boom")
    ]


@pytest.mark.parametrize(
    ("action", "event"),
    [
        ("stop", InstanceStopped(**IDS, operation_id="op-2")),
        ("restart", InstanceRestarted(**IDS, operation_id="op-2", restarted_at=NOW)),
    ],
)
def test_a_control_action_that_succeeded_records_its_own_event(
    action: str, event: DomainEvent
) -> None:
    command = RecordActionSucceeded(operation_id="op-2", action=action)  # type: ignore[arg-type]

    assert when(command, [*provisioned_instance(), asked(action)]) == [event]


def test_a_start_that_succeeded_records_the_instance_started() -> None:
    given = [
        *provisioned_instance(),
        asked("stop", "op-stop"),
        InstanceStopped(**IDS, operation_id="op-stop"),
        asked("start"),
    ]

    then = when(RecordActionSucceeded(operation_id="op-2", action="start"), given)

    assert then == [InstanceStarted(**IDS, operation_id="op-2")]


def test_a_failed_action_records_action_step_and_message() -> None:
    command = RecordActionFailed(
        operation_id="op-2", action="restart", step="readiness", message="unhealthy"
    )

    then = when(command, [*provisioned_instance(), asked("restart")])

    assert then == [
        ActionFailed(
            **IDS, operation_id="op-2", action="restart", step="readiness", message="unhealthy"
        )
    ]


def test_a_redeploy_records_the_colour_now_serving() -> None:
    given = [
        *provisioned_instance(),
        RedeployRequested(**IDS, operation_id="op-3", target_color="green"),
    ]

    then = when(RecordRedeployed(operation_id="op-3", active_color="green"), given)

    assert then == [InstanceRedeployed(**IDS, operation_id="op-3", active_color="green")]


def test_a_rotation_records_the_new_password_set_or_its_failure() -> None:
    given = [
        *provisioned_instance(),
        AdminPasswordRotationRequested(
            **IDS, operation_id="op-4", admin_user_password=Sealed("v1:new")
        ),
    ]

    assert when(RecordAdminPasswordRotated(operation_id="op-4"), given) == [
        AdminPasswordRotated(**IDS, operation_id="op-4")
    ]
    failed = RecordAdminPasswordRotationFailed(operation_id="op-4", step="set", message="no")
    assert when(failed, given) == [
        AdminPasswordRotationFailed(**IDS, operation_id="op-4", step="set", message="no")
    ]


def test_an_outcome_already_recorded_for_the_operation_decides_nothing() -> None:
    """A redelivered message, or a worker that died between recording and closing."""
    given = [
        *provisioned_instance(),
        asked("restart"),
        InstanceRestarted(**IDS, operation_id="op-2", restarted_at=NOW),
    ]

    assert when(RecordActionSucceeded(operation_id="op-2", action="restart"), given) == []
    failed = RecordActionFailed(operation_id="op-2", action="restart", step="s", message="m")
    assert when(failed, given) == []


def test_an_outcome_recorded_before_a_removal_is_still_recognised_as_recorded() -> None:
    given = removing(
        asked("restart"), InstanceRestarted(**IDS, operation_id="op-2", restarted_at=NOW)
    )

    assert when(RecordActionSucceeded(operation_id="op-2", action="restart"), given) == []


@pytest.mark.parametrize(
    "command",
    [
        RecordProvisioned(operation_id="op-2", active_color="blue"),
        RecordProvisioningFailed(operation_id="op-2", step="s", message="m"),
        RecordActionSucceeded(operation_id="op-2", action="start"),
        RecordActionFailed(operation_id="op-2", action="start", step="s", message="m"),
        RecordRedeployed(operation_id="op-2", active_color="green"),
        RecordAdminPasswordRotated(operation_id="op-2"),
        RecordAdminPasswordRotationFailed(operation_id="op-2", step="s", message="m"),
    ],
    ids=lambda c: type(c).__name__,
)
def test_a_late_outcome_does_not_revive_an_instance_being_removed(command: RecordOutcome) -> None:
    with pytest.raises(OutcomeOverruled) as refused:
        when(command, removing(asked("start")))

    assert refused.value.reason == REMOVING


def test_a_late_outcome_is_refused_once_the_instance_is_removed() -> None:
    given = [*removing(asked("start")), InstanceRemoved(**IDS, operation_id="op-rm")]

    with pytest.raises(OutcomeOverruled):
        when(RecordActionSucceeded(operation_id="op-2", action="start"), given)


def test_a_teardown_that_completed_records_the_instance_removed() -> None:
    assert when(RecordRemoved(operation_id="op-rm"), removing()) == [
        InstanceRemoved(**IDS, operation_id="op-rm")
    ]


def test_each_failed_teardown_attempt_is_recorded_while_the_removal_goes_on() -> None:
    command = RecordRemovalAttemptFailed(operation_id="op-rm", step="db-down", message="busy")
    given = [
        *removing(),
        RemovalFailed(**IDS, operation_id="op-rm", step="db-down", message="busy"),
    ]

    assert when(command, given) == [
        RemovalFailed(**IDS, operation_id="op-rm", step="db-down", message="busy")
    ]


def test_a_teardown_out_of_retries_records_the_removal_abandoned() -> None:
    command = RecordRemovalAbandoned(operation_id="op-rm", step="verify", message="left over")

    assert when(command, removing()) == [
        RemovalAbandoned(**IDS, operation_id="op-rm", step="verify", message="left over")
    ]


def test_a_second_teardown_may_remove_an_instance_whose_first_one_was_abandoned() -> None:
    given = [
        *removing(),
        RemovalAbandoned(**IDS, operation_id="op-rm", step="verify", message="left over"),
    ]

    assert when(RecordRemoved(operation_id="op-rm-2"), given) == [
        InstanceRemoved(**IDS, operation_id="op-rm-2")
    ]


def test_a_teardown_outcome_after_a_forced_removal_is_refused() -> None:
    given = [
        *removing(),
        RemovalFailed(**IDS, operation_id="op-rm", step="db-down", message="busy"),
        InstanceRemovalForced(**IDS, failure="db-down: busy", forced_at=NOW),
    ]

    for command in (
        RecordRemoved(operation_id="op-rm"),
        RecordRemovalAttemptFailed(operation_id="op-rm", step="db-down", message="busy"),
    ):
        with pytest.raises(OutcomeOverruled) as refused:
            when(command, given)
        assert refused.value.reason == REMOVED


def test_a_teardown_outcome_without_a_removal_asked_for_is_refused() -> None:
    with pytest.raises(OutcomeOverruled):
        when(RecordRemoved(operation_id="op-rm"), provisioned_instance())


def test_an_outcome_for_an_instance_that_does_not_exist_is_refused() -> None:
    with pytest.raises(InstanceNotFound):
        when(RecordProvisioned(operation_id="op", active_color="blue"), [])


def test_each_command_says_how_its_operation_ends() -> None:
    assert outcome_of(RecordProvisioned(operation_id="o", active_color="blue")) == Succeeded()
    assert outcome_of(RecordRemoved(operation_id="o")) == Succeeded()
    failed = RecordActionFailed(operation_id="o", action="stop", step="app-stop", message="m")
    assert outcome_of(failed) == FailedAt("app-stop", "m")
    attempt = RecordRemovalAttemptFailed(operation_id="o", step="verify", message="m")
    assert outcome_of(attempt) == FailedAt("verify", "m")
