"""Each instance saga's `react`, given / when / then: from the instance as its decider folds
it to a plan (and the commands its outcome will be) or a cancellation. No sshd, no database."""

from __future__ import annotations

import pytest
from builders import ID, NOW, create_command

from commands.instance import decide
from commands.instance_outcomes import (
    REMOVING,
    RecordActionFailed,
    RecordActionSucceeded,
    RecordAdminPasswordRotated,
    RecordAdminPasswordRotationFailed,
    RecordProvisioned,
    RecordProvisioningFailed,
    RecordRedeployed,
    RecordRemovalAbandoned,
    RecordRemoved,
)
from commands.instance_state import Absent, Existing, fold, initial_state
from events.instance import (
    ActionRequested,
    AdminPasswordRotationRequested,
    InstanceProvisioned,
    InstanceRemovalForced,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    ProvisioningRequested,
    RedeployRequested,
    RemovalFailed,
    RemovalRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed
from workers.sagas import control, provisioning, redeploy, rotate_admin, teardown
from workers.sagas.instance_saga import Cancel, Plan, Reaction
from workers.sagas.provision_steps import CHECKS

IDS = {"instance_id": ID}
PROVISIONING = ProvisioningRequested(**IDS, server_id="s", operation_id="op-provision")


def created() -> list[DomainEvent]:
    return decide(create_command(), initial_state(), NOW)


def failed() -> list[DomainEvent]:
    failure = ProvisioningFailed(
        **IDS, operation_id="op-provision", step="readiness", message="unhealthy"
    )
    return [*created(), failure]


def running(color: str = "blue") -> list[DomainEvent]:
    provisioned = InstanceProvisioned(**IDS, operation_id="op-provision", active_color=color)  # type: ignore[arg-type]
    return [*created(), provisioned]


def stopped() -> list[DomainEvent]:
    return [*running(), action("stop", "op-stop"), InstanceStopped(**IDS, operation_id="op-stop")]


def removing(given: list[DomainEvent]) -> list[DomainEvent]:
    return [*given, RemovalRequested(**IDS, operation_id="op-rm")]


def action(name: str, operation_id: str = "op-2") -> ActionRequested:
    return ActionRequested(**IDS, action=name, operation_id=operation_id)  # type: ignore[arg-type]


def state(given: list[DomainEvent]) -> Existing:
    folded = fold(given)
    assert not isinstance(folded, Absent)
    return folded


def plan(reaction: Reaction) -> Plan:
    assert isinstance(reaction, Plan), reaction
    return reaction


# ---- provisioning ------------------------------------------------------------------------


def test_a_new_instance_is_provisioned_from_the_start() -> None:
    then = plan(provisioning.react(PROVISIONING, state(created())))

    assert then.resume_from == ()
    assert then.checks == CHECKS
    assert then.succeeded() == RecordProvisioned(operation_id="op-provision", active_color="blue")
    assert then.failed("db-up", "boom") == RecordProvisioningFailed(
        operation_id="op-provision", step="db-up", message="boom"
    )


def test_a_provisioning_redelivered_after_it_completed_is_cancelled() -> None:
    then = provisioning.react(PROVISIONING, state(running()))

    assert then == Cancel("the instance is provisioned already")


def test_a_provisioning_overtaken_by_a_removal_is_cancelled() -> None:
    assert provisioning.react(PROVISIONING, state(removing(created()))) == Cancel(REMOVING)


# ---- control -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["start", "restart"])
def test_starting_a_failed_instance_resumes_its_provisioning_and_recreates_the_app(
    name: str,
) -> None:
    given = [*failed(), action(name)]

    then = plan(control.react(action(name), state(given)))

    assert then.resume_from == ("op-provision", "op-2")
    assert "app-up" in then.checks  # run again (created anew), not carried over
    assert then.checks >= CHECKS
    assert then.succeeded() == RecordProvisioned(operation_id="op-2", active_color="blue")
    assert then.failed("readiness", "m") == RecordProvisioningFailed(
        operation_id="op-2", step="readiness", message="m"
    )


def test_stopping_a_never_provisioned_instance_is_cancelled() -> None:
    then = control.react(action("stop"), state(failed()))

    assert then == Cancel("the instance was never provisioned")


@pytest.mark.parametrize("name", ["start", "stop", "restart"])
def test_a_control_action_on_a_provisioned_instance_records_its_own_outcome(name: str) -> None:
    then = plan(control.react(action(name), state([*running(), action(name)])))

    assert then.resume_from == ()
    assert then.succeeded() == RecordActionSucceeded(operation_id="op-2", action=name)  # type: ignore[arg-type]
    assert then.failed("s", "m") == RecordActionFailed(
        operation_id="op-2",
        action=name,  # type: ignore[arg-type]
        step="s",
        message="m",
    )


def test_a_control_action_overtaken_by_a_removal_is_cancelled() -> None:
    given = removing([*running(), action("restart")])

    assert control.react(action("restart"), state(given)) == Cancel(REMOVING)


# ---- redeploy ----------------------------------------------------------------------------


def redeploy_asked(target: str = "green") -> RedeployRequested:
    return RedeployRequested(**IDS, operation_id="op-3", target_color=target)  # type: ignore[arg-type]


def test_a_redeploy_starts_the_colour_idle_when_it_runs() -> None:
    then = plan(redeploy.react(redeploy_asked("blue"), state(running("blue"))))

    # Asked for blue, but blue serves now: green is the idle one.
    assert then.succeeded() == RecordRedeployed(operation_id="op-3", active_color="green")
    assert then.failed("readiness-green", "m") == RecordActionFailed(
        operation_id="op-3", action="redeploy", step="readiness-green", message="m"
    )


def test_a_redeploy_before_anything_serves_is_cancelled() -> None:
    then = redeploy.react(redeploy_asked(), state(created()))

    assert isinstance(then, Cancel)
    assert then.reason.startswith("nothing serves yet")


def test_a_redeploy_of_an_instance_stopped_on_purpose_is_cancelled() -> None:
    then = redeploy.react(redeploy_asked(), state(stopped()))

    assert isinstance(then, Cancel)
    assert then.reason.startswith("the instance is stopped")


def test_a_redeploy_overtaken_by_a_removal_is_cancelled() -> None:
    assert redeploy.react(redeploy_asked(), state(removing(running()))) == Cancel(REMOVING)


# ---- admin password rotation -------------------------------------------------------------

ROTATION = AdminPasswordRotationRequested(
    **IDS, operation_id="op-4", admin_user_password=Sealed("v1:new")
)


def test_a_rotation_on_a_running_instance_sets_the_password_then_records_it() -> None:
    then = plan(rotate_admin.react(ROTATION, state([*running(), ROTATION])))

    assert then.succeeded() == RecordAdminPasswordRotated(operation_id="op-4")
    assert then.failed("set-password", "m") == RecordAdminPasswordRotationFailed(
        operation_id="op-4", step="set-password", message="m"
    )


def test_a_rotation_overtaken_by_a_removal_is_cancelled() -> None:
    assert rotate_admin.react(ROTATION, state(removing([*running(), ROTATION]))) == Cancel(REMOVING)


# ---- teardown ----------------------------------------------------------------------------

REMOVAL = RemovalRequested(**IDS, operation_id="op-rm")


def test_a_teardown_records_the_instance_removed_or_abandons_after_its_retries() -> None:
    then = plan(teardown.react(REMOVAL, state(removing(running()))))

    assert then.retry is not None
    assert then.succeeded() == RecordRemoved(operation_id="op-rm")
    assert then.failed("verify", "m") == RecordRemovalAbandoned(
        operation_id="op-rm", step="verify", message="m"
    )


def test_a_teardown_after_a_forced_removal_is_cancelled() -> None:
    given = [
        *removing(running()),
        RemovalFailed(**IDS, operation_id="op-rm", step="db-down", message="busy"),
        InstanceRemovalForced(**IDS, failure="db-down: busy", forced_at=NOW),
    ]

    assert teardown.react(REMOVAL, state(given)) == Cancel("the instance is removed already")


def test_a_teardown_of_an_instance_changed_while_creating_still_runs() -> None:
    given = removing([*created(), InstanceUpdated(instance_id=ID, name="Renamed", updated_at=NOW)])

    assert isinstance(teardown.react(REMOVAL, state(given)), Plan)
