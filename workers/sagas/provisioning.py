"""The provisioning saga (on ProvisioningRequested): from nothing on the server to the
instance serving its subdomain, as colour blue."""

from __future__ import annotations

from commands.instance_outcomes import REMOVING
from commands.instance_state import Abandoned, Existing, Removed, Removing
from events.instance import ProvisioningRequested
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    Cancel,
    InstanceOperation,
    Reaction,
    record_exhausted,
    run_instance_operation,
)
from workers.sagas.provision_steps import provision_plan


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, ProvisioningRequested)
    return InstanceOperation(
        "provision", event.operation_id, event.instance_id, lambda state: react(event, state)
    )


def react(event: ProvisioningRequested, state: Existing) -> Reaction:
    if isinstance(state, Removing | Abandoned | Removed):
        return Cancel(REMOVING)
    if state.facts.provisioned:
        return Cancel("the instance is provisioned already")
    return provision_plan(event.operation_id, ())


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
