"""The provisioning saga (on ProvisioningRequested): from nothing on the server to the
instance serving its subdomain, as colour blue."""

from __future__ import annotations

from events.instance import ProvisioningRequested
from workers.instance_access import InstanceRecord
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    REMOVING,
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

    def react(instance: InstanceRecord) -> Reaction:
        if instance.removal is not None:
            return Cancel(REMOVING)
        if instance.provisioned:
            return Cancel("the instance is provisioned already")
        return provision_plan(event.instance_id, event.operation_id, ())

    return InstanceOperation("provision", event.operation_id, event.instance_id, react)


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
