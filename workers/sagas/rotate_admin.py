"""The admin password rotation saga (on AdminPasswordRotationRequested): the new password of
the admin user is set through Odoo itself (`odoo shell` in the running colour, reading the
script on its standard input), then recorded as the one in force. Until
AdminPasswordRotated, the previous password holds; a failed rotation leaves it so."""

from __future__ import annotations

from commands.instance_outcomes import (
    REMOVING,
    RecordAdminPasswordRotated,
    RecordAdminPasswordRotationFailed,
)
from commands.instance_state import Abandoned, Existing, InstanceFacts, Removed, Removing
from events.instance import AdminPasswordRotationRequested, instance_stream
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    Cancel,
    InstanceOperation,
    Plan,
    Reaction,
    record_exhausted,
    run_instance_operation,
)
from workers.sagas.provision_steps import write_admin_password
from workers.sagas.runtime import Step
from workers.server.masking import Masker
from workers.server.remote import StepError


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, AdminPasswordRotationRequested)
    return InstanceOperation(
        "rotate-admin-password",
        event.operation_id,
        event.instance_id,
        lambda state: react(event, state),
    )


def react(event: AdminPasswordRotationRequested, state: Existing) -> Reaction:
    if isinstance(state, Removing | Abandoned | Removed):
        return Cancel(REMOVING)
    return _plan(event, state.facts)


def _plan(event: AdminPasswordRotationRequested, instance: InstanceFacts) -> Plan:
    async def steps(ctx: InstanceContext) -> list[Step]:
        async def set_password() -> str:
            # Checked when the step runs, so the message says why nothing was changed.
            if instance.active_color is None:
                raise StepError("the instance was never provisioned: no Odoo to set it in")
            if instance.stopped_on_purpose:
                raise StepError("the instance is stopped: start it, then rotate again")
            stream_id = instance_stream(event.instance_id)
            password = await ctx.deps.vault.open(stream_id, event.admin_user_password)
            new, known = Masker([password]), ctx.log.mask
            ctx.log.mask = lambda text: known(new(text))
            return await write_admin_password(ctx, password, instance.active_color)

        return [Step("set-password", set_password)]

    return Plan(
        steps=steps,
        succeeded=lambda: RecordAdminPasswordRotated(operation_id=event.operation_id),
        failed=lambda step, message: RecordAdminPasswordRotationFailed(
            operation_id=event.operation_id, step=step, message=message
        ),
    )


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
