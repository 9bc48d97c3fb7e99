"""A runtime change (envVars, addonsPath) asks for a blue/green redeploy when an operation
that starts a colour read the settings before it; given / when / then, no database."""

from __future__ import annotations

import pytest
from builders import ID, NOW, created_instance

from commands.instance import UpdateInstance, decide
from commands.instance_state import evolve, initial_state
from commands.runner import folder
from events.instance import (
    ActionFailed,
    ActionRequested,
    ControlAction,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    RedeployRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed

OP = "op-update"
fold = folder(initial_state(), evolve)


def running() -> list[DomainEvent]:
    return [
        *created_instance(),
        InstanceProvisioned(instance_id=ID, operation_id="p", active_color="blue"),
    ]


def redeployed_to_green() -> list[DomainEvent]:
    return [
        *running(),
        RedeployRequested(instance_id=ID, operation_id="r", target_color="green"),
        InstanceRedeployed(instance_id=ID, operation_id="r", active_color="green"),
    ]


def asked(history: list[DomainEvent], action: ControlAction) -> list[DomainEvent]:
    return [*history, ActionRequested(instance_id=ID, action=action, operation_id="c")]


def stopped() -> list[DomainEvent]:
    return [*asked(running(), "stop"), InstanceStopped(instance_id=ID, operation_id="c")]


def failed_provisioning() -> list[DomainEvent]:
    failure = ProvisioningFailed(instance_id=ID, operation_id="p", step="db-up", message="x")
    return [*created_instance(), failure]


def failed_redeploy() -> list[DomainEvent]:
    failure = ActionFailed(
        instance_id=ID, operation_id="r", action="redeploy", step="readiness-green", message="x"
    )
    return [
        *running(),
        RedeployRequested(instance_id=ID, operation_id="r", target_color="green"),
        failure,
    ]


NEW_ENV = UpdateInstance(env_vars={"A": Sealed("v1:a2")}, operation_id=OP)
NEW_ADDONS = UpdateInstance(addons_path="/mnt/extra-addons,/mnt/custom", operation_id=OP)


def redeploy_to(color: str) -> RedeployRequested:
    return RedeployRequested(instance_id=ID, operation_id=OP, target_color=color)  # type: ignore[arg-type]


def test_new_env_vars_on_a_running_instance_ask_for_a_redeploy_to_the_idle_colour() -> None:
    events = decide(NEW_ENV, fold(running()), NOW)

    assert events == [
        InstanceUpdated(instance_id=ID, env_vars={"A": Sealed("v1:a2")}, updated_at=NOW),
        redeploy_to("green"),
    ]


def test_a_new_addons_path_on_a_running_instance_asks_for_a_redeploy() -> None:
    events = decide(NEW_ADDONS, fold(running()), NOW)

    assert events[1:] == [redeploy_to("green")]


def test_after_a_redeploy_to_green_the_idle_colour_is_blue() -> None:
    events = decide(NEW_ENV, fold(redeployed_to_green()), NOW)

    assert events[1:] == [redeploy_to("blue")]


def test_a_redeploy_being_asked_for_leaves_the_instance_running() -> None:
    history = [*running(), *decide(NEW_ENV, fold(running()), NOW)]

    assert fold(history).status == "running"


def test_a_second_quick_change_asks_for_its_own_redeploy() -> None:
    # Decided before the first redeploy ran: both name the same colour, and the saga starts
    # whichever is idle when it runs (workers/sagas/redeploy.py).
    history = [*running(), *decide(NEW_ENV, fold(running()), NOW)]

    events = decide(NEW_ADDONS, fold(history), NOW)

    assert events[1:] == [redeploy_to("green")]


@pytest.mark.parametrize(
    "command",
    [
        UpdateInstance(name="Renamed", operation_id=OP),
        UpdateInstance(mcp_write_enabled=True, operation_id=OP),
    ],
    ids=["name", "mcpWriteEnabled"],
)
def test_a_change_the_server_does_not_see_asks_for_no_redeploy(command: UpdateInstance) -> None:
    events = decide(command, fold(running()), NOW)

    assert [type(e) for e in events] == [InstanceUpdated]


def test_a_runtime_change_together_with_a_name_asks_for_one_redeploy() -> None:
    command = UpdateInstance(name="Renamed", env_vars={"B": Sealed("v1:b")}, operation_id=OP)

    events = decide(command, fold(running()), NOW)

    assert [type(e) for e in events] == [InstanceUpdated, RedeployRequested]


def test_an_update_that_changes_nothing_asks_for_no_redeploy() -> None:
    assert decide(UpdateInstance(addons_path=None, operation_id=OP), fold(running()), NOW) == []


@pytest.mark.parametrize(
    "history",
    [stopped(), asked(running(), "stop"), failed_provisioning()],
    ids=["stopped", "stopping", "failed-provisioning"],
)
def test_an_instance_that_does_not_serve_only_records_the_change(
    history: list[DomainEvent],
) -> None:
    events = decide(NEW_ENV, fold(history), NOW)

    assert [type(e) for e in events] == [InstanceUpdated]


@pytest.mark.parametrize(
    ("history", "target"),
    [
        (created_instance(), "green"),
        (asked(stopped(), "start"), "green"),
        (asked(running(), "restart"), "green"),
        (asked(redeployed_to_green(), "restart"), "blue"),
        (asked(failed_provisioning(), "start"), "green"),
    ],
    ids=["creating", "starting", "restarting", "restarting-green", "starting-unprovisioned"],
)
def test_an_operation_on_its_way_to_serving_is_followed_by_a_redeploy(
    history: list[DomainEvent], target: str
) -> None:
    # The operation in flight read the settings before this change.
    events = decide(NEW_ENV, fold(history), NOW)

    assert events[1:] == [redeploy_to(target)]


def test_a_failed_redeploy_leaves_the_instance_running_and_the_next_change_redeploys() -> None:
    # The route moves only once the new colour is ready: the old one still serves, and the
    # next change (a fixed setting, say) tries the idle colour again.
    state = fold(failed_redeploy())

    assert state.status == "running"
    assert decide(NEW_ENV, state, NOW)[1:] == [redeploy_to("green")]


def test_without_an_operation_id_a_runtime_change_is_only_recorded() -> None:
    command = UpdateInstance(env_vars={"A": Sealed("v1:a2")})

    events = decide(command, fold(running()), NOW)

    assert [type(e) for e in events] == [InstanceUpdated]
