"""The admin password rotation saga (on AdminPasswordRotationRequested): the new password of
the admin user is set through Odoo itself (`odoo shell` in the running colour, reading the
script on its standard input), then recorded as the one in force. Until
AdminPasswordRotated, the previous password holds; a failed rotation leaves it so."""

from __future__ import annotations

from events.instance import (
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    instance_stream,
)
from events.registry import DomainEvent
from workers.instance_access import InstanceRecord, may_settle
from workers.masking import Masker
from workers.remote import StepError
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    REMOVING,
    Cancel,
    InstanceOperation,
    Plan,
    Reaction,
    record_exhausted,
    run_instance_operation,
)
from workers.sagas.provision_steps import write_admin_password
from workers.sagas.runtime import Step


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, AdminPasswordRotationRequested)

    def react(instance: InstanceRecord) -> Reaction:
        if instance.removal is not None:
            return Cancel(REMOVING)
        return _plan(event, instance)

    return InstanceOperation("rotate-admin-password", event.operation_id, event.instance_id, react)


def _plan(event: AdminPasswordRotationRequested, instance: InstanceRecord) -> Plan:
    ids = {"instance_id": event.instance_id, "operation_id": event.operation_id}

    async def steps(ctx: InstanceContext) -> list[Step]:
        async def set_password() -> str:
            # Checked when the step runs, so the message says why nothing was changed.
            if not instance.provisioned or instance.active_color is None:
                raise StepError("the instance was never provisioned: no Odoo to set it in")
            if instance.stopped:
                raise StepError("the instance is stopped: start it, then rotate again")
            stream_id = instance_stream(event.instance_id)
            password = await ctx.deps.vault.open(stream_id, event.admin_user_password)
            new, known = Masker([password]), ctx.log.mask
            ctx.log.mask = lambda text: known(new(text))
            return await write_admin_password(ctx, password, instance.active_color)

        return [Step("set-password", set_password)]

    def failed(step: str, message: str) -> list[DomainEvent]:
        return [AdminPasswordRotationFailed(**ids, step=step, message=message)]

    return Plan(
        steps=steps,
        succeeded=lambda: [AdminPasswordRotated(**ids)],
        failed=failed,
        allowed=lambda events: may_settle(event.operation_id, events),
    )


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
