"""The admin password rotation saga (on AdminPasswordRotationRequested): the new password of
the admin user is set through Odoo itself (`odoo shell` in the running colour, reading the
script on its standard input), then recorded as the one in force. Until
AdminPasswordRotated, the previous password holds; a failed rotation leaves it so."""

from __future__ import annotations

from typing import Final

from commands.instance_outcomes import (
    RecordAdminPasswordRotated,
    RecordAdminPasswordRotationFailed,
)
from commands.instance_state import InstanceFacts
from events.instance import AdminPasswordRotationRequested, instance_stream
from workers.sagas.context import InstanceContext
from workers.sagas.instance_saga import Plan
from workers.sagas.provision_steps import write_admin_password
from workers.sagas.running_odoo import RunningOdooSaga, mask_from_now_on, running_color
from workers.sagas.runtime import Step


def _plan(event: AdminPasswordRotationRequested, instance: InstanceFacts) -> Plan:
    async def steps(ctx: InstanceContext) -> list[Step]:
        async def set_password() -> str:
            color = running_color(instance, nothing_to="set it in", then="rotate again")
            stream_id = instance_stream(event.instance_id)
            password = await ctx.deps.vault.open(stream_id, event.admin_user_password)
            mask_from_now_on(ctx.log, password)
            return await write_admin_password(ctx, password, color)

        return [Step("set-password", set_password)]

    return Plan(
        steps=steps,
        succeeded=lambda: RecordAdminPasswordRotated(operation_id=event.operation_id),
        failed=lambda step, message: RecordAdminPasswordRotationFailed(
            operation_id=event.operation_id, step=step, message=message
        ),
    )


SAGA: Final = RunningOdooSaga("rotate-admin-password", AdminPasswordRotationRequested, _plan)
react, handle, exhausted = SAGA.react, SAGA.handle, SAGA.exhausted
