"""The control sagas (on ActionRequested): start, stop and restart of the active colour, each
confirmed before its outcome. Starting a never-provisioned (failed) instance resumes its
provisioning instead: the steps the earlier provisioning operations completed are not run
again, under the start's own operation (the one the client was given)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from events.instance import (
    ActionFailed,
    ActionRequested,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
)
from events.registry import DomainEvent
from workers.instance_access import InstanceRecord, may_settle
from workers.readiness import wait_stopped
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
from workers.sagas.provision_steps import app_up, provision_plan, ready
from workers.sagas.runtime import Step
from workers.server_commands import restart_command, stop_command


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, ActionRequested)

    def react(instance: InstanceRecord) -> Reaction:
        if instance.removal is not None:
            return Cancel(REMOVING)
        if not instance.provisioned:
            if event.action == "stop":
                return Cancel("the instance was never provisioned")
            resume_from = tuple(instance.provisioning_ops)
            return provision_plan(
                event.instance_id,
                event.operation_id,
                resume_from,
                reconfigured=instance.reconfigured,
            )
        color = instance.active_color or "blue"
        return _plan(event, color)

    return InstanceOperation(event.action, event.operation_id, event.instance_id, react)


def _plan(event: ActionRequested, color: str) -> Plan:
    ids = {"instance_id": event.instance_id, "operation_id": event.operation_id}
    outcomes: dict[str, Callable[[], DomainEvent]] = {
        "start": lambda: InstanceStarted(**ids),
        "stop": lambda: InstanceStopped(**ids),
        "restart": lambda: InstanceRestarted(**ids, restarted_at=datetime.now(UTC)),
    }

    async def steps(ctx: InstanceContext) -> list[Step]:
        async def stop() -> str:
            return await ctx.remote.check(stop_command(ctx.layout, color))

        async def stopped() -> str:
            return await wait_stopped(ctx.remote, ctx.layout, color, ctx.config.stopping)

        async def restart() -> str:
            return await ctx.remote.check(restart_command(ctx.layout, color))

        readiness = Step("readiness", lambda: ready(ctx, color))
        by_action = {
            "start": [Step("app-up", lambda: app_up(ctx, color)), readiness],
            "stop": [Step("app-stop", stop), Step("stopped", stopped)],
            "restart": [Step("app-restart", restart), readiness],
        }
        return by_action[event.action]

    def failed(step: str, message: str) -> list[DomainEvent]:
        return [ActionFailed(**ids, action=event.action, step=step, message=message)]

    return Plan(
        steps=steps,
        succeeded=lambda: [outcomes[event.action]()],
        failed=failed,
        allowed=lambda events: may_settle(event.operation_id, events),
    )


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
