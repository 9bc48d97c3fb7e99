"""What the instance's fold tells its sagas, given / when / then over events: the operations
that provisioned it, each operation's outcome, the colour serving, whether it was stopped on
purpose and the admin password in force. No database."""

from __future__ import annotations

from builders import ID, NOW, created_instance

from commands.instance_state import (
    Abandoned,
    Absent,
    Existing,
    InstanceFacts,
    Removing,
    Running,
    fold,
)
from commands.outcome import FailedAt, Succeeded
from events.instance import (
    ActionFailed,
    ActionRequested,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemoved,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    RemovalAbandoned,
    RemovalFailed,
    RemovalRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed

IDS = {"instance_id": ID}


def provisioned() -> InstanceProvisioned:
    return InstanceProvisioned(**IDS, operation_id="op-provision", active_color="blue")


def action(name: str, operation_id: str) -> ActionRequested:
    return ActionRequested(**IDS, action=name, operation_id=operation_id)  # type: ignore[arg-type]


def facts(given: list[DomainEvent]) -> InstanceFacts:
    state = fold(given)
    assert not isinstance(state, Absent)
    return state.facts


def phase(given: list[DomainEvent]) -> Existing:
    state = fold(given)
    assert not isinstance(state, Absent)
    return state


def test_a_new_instance_knows_its_creation_and_its_provisioning_operation() -> None:
    then = facts(created_instance())

    assert then.created.slug == "acme"
    assert then.provisioning_ops == ("op-provision",)
    assert then.active_color is None
    assert not then.provisioned
    assert then.outcomes == {}


def test_a_start_of_a_never_provisioned_instance_counts_as_a_provisioning_operation() -> None:
    failure = ProvisioningFailed(**IDS, operation_id="op-provision", step="s", message="m")

    then = facts([*created_instance(), failure, action("start", "op-start")])

    assert then.provisioning_ops == ("op-provision", "op-start")
    assert then.outcomes == {"op-provision": FailedAt("s", "m")}


def test_a_start_of_a_provisioned_instance_is_no_provisioning() -> None:
    given = [*created_instance(), provisioned(), action("stop", "op-stop")]
    given += [InstanceStopped(**IDS, operation_id="op-stop"), action("start", "op-start")]

    assert facts(given).provisioning_ops == ("op-provision",)


def test_provisioned_in_blue_the_instance_serves_blue_and_the_outcome_is_recorded() -> None:
    then = facts([*created_instance(), provisioned()])

    assert then.active_color == "blue"
    assert then.provisioned
    assert then.outcomes == {"op-provision": Succeeded()}


def test_a_redeploy_moves_the_active_colour() -> None:
    redeployed = InstanceRedeployed(**IDS, operation_id="op-3", active_color="green")

    assert facts([*created_instance(), provisioned(), redeployed]).active_color == "green"


def test_a_stop_is_remembered_as_on_purpose_until_a_start() -> None:
    stopped = [*created_instance(), provisioned(), action("stop", "op-stop")]
    stopped.append(InstanceStopped(**IDS, operation_id="op-stop"))
    failed_start = [
        action("start", "op-start"),
        ActionFailed(**IDS, operation_id="op-start", action="start", step="app-up", message="m"),
    ]
    started = [action("start", "op-5"), InstanceStarted(**IDS, operation_id="op-5")]

    assert facts(stopped).stopped_on_purpose
    assert facts([*stopped, *failed_start]).stopped_on_purpose
    assert not facts([*stopped, *failed_start, *started]).stopped_on_purpose


def test_a_failed_redeploy_records_its_outcome_and_the_old_colour_keeps_serving() -> None:
    failure = ActionFailed(
        **IDS, operation_id="op-3", action="redeploy", step="readiness-green", message="m"
    )

    then = phase([*created_instance(), provisioned(), failure])

    assert isinstance(then, Running)
    assert then.facts.active_color == "blue"
    assert then.facts.outcomes["op-3"] == FailedAt("readiness-green", "m")


def test_a_rotated_password_is_in_force_once_set_and_a_failed_one_never() -> None:
    asked = [
        AdminPasswordRotationRequested(
            **IDS, operation_id="op-a", admin_user_password=Sealed("v1:a")
        ),
        AdminPasswordRotationRequested(
            **IDS, operation_id="op-b", admin_user_password=Sealed("v1:b")
        ),
    ]
    settled = [
        AdminPasswordRotated(**IDS, operation_id="op-a"),
        AdminPasswordRotationFailed(**IDS, operation_id="op-b", step="set", message="m"),
    ]

    pending = facts([*created_instance(), provisioned(), *asked])
    then = facts([*created_instance(), provisioned(), *asked, *settled])

    assert pending.admin_user_password == Sealed("v1:admin-user")
    assert set(pending.rotations) == {"op-a", "op-b"}
    assert then.admin_user_password == Sealed("v1:a")
    assert then.rotations == {}
    assert then.outcomes["op-a"] == Succeeded()
    assert then.outcomes["op-b"] == FailedAt("set", "m")


def test_a_change_updates_the_settings_the_next_colour_renders_from() -> None:
    update = InstanceUpdated(
        instance_id=ID,
        addons_path="/mnt/extra-addons/x",
        env_vars={"B": Sealed("v1:b")},
        updated_at=NOW,
    )

    then = facts([*created_instance(), update])

    assert then.addons_path == "/mnt/extra-addons/x"
    assert then.env_vars == {"B": Sealed("v1:b")}
    assert then.created.env_vars == {"A": Sealed("v1:a")}  # what it was created with stays


def test_a_failed_teardown_attempt_keeps_the_removal_going_and_is_no_outcome() -> None:
    given = [*created_instance(), provisioned(), RemovalRequested(**IDS, operation_id="op-rm")]
    given.append(RemovalFailed(**IDS, operation_id="op-rm", step="db-down", message="busy"))

    then = phase(given)

    assert isinstance(then, Removing)
    assert then.failure == "db-down: busy"
    assert "op-rm" not in then.facts.outcomes


def test_an_abandoned_and_a_completed_teardown_are_outcomes_of_their_operations() -> None:
    given = [*created_instance(), provisioned(), RemovalRequested(**IDS, operation_id="op-rm")]
    abandoned = RemovalAbandoned(**IDS, operation_id="op-rm", step="verify", message="left")
    again = RemovalRequested(**IDS, operation_id="op-rm-2")
    removed = InstanceRemoved(**IDS, operation_id="op-rm-2")

    assert isinstance(phase([*given, abandoned]), Abandoned)
    then = facts([*given, abandoned, again, removed])
    assert then.outcomes["op-rm"] == FailedAt("verify", "left")
    assert then.outcomes["op-rm-2"] == Succeeded()
