"""The control sagas (on ActionRequested): start, stop and restart of the active colour, each
confirmed before its outcome. Starting (or restarting) a never-provisioned (failed) instance
resumes its provisioning instead: the steps the earlier provisioning operations completed are
not run again, except the app colour's, which is created anew, under the start's own operation
(the one the client was given)."""

from __future__ import annotations

from commands.instance_outcomes import REMOVING, RecordActionFailed, RecordActionSucceeded
from commands.instance_state import Abandoned, Existing, Removed, Removing
from events.instance import ActionRequested, Color
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
from workers.sagas.provision_steps import app_up_work, provision_plan, ready
from workers.sagas.readiness import wait_limit, waited
from workers.sagas.remote_steps import AnyStep, RemoteStep, RemoteWork
from workers.sagas.runtime import Step
from workers.server.commands import restart_command, stop_command, wait_stopped_command
from workers.server.payload import Payload


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, ActionRequested)
    return InstanceOperation(
        event.action, event.operation_id, event.instance_id, lambda state: react(event, state)
    )


def react(event: ActionRequested, state: Existing) -> Reaction:
    if isinstance(state, Removing | Abandoned | Removed):
        return Cancel(REMOVING)
    facts = state.facts
    if facts.active_color is None:
        if event.action == "stop":
            return Cancel("the instance was never provisioned")
        return provision_plan(event.operation_id, facts.provisioning_ops)
    return _plan(event, facts.active_color)


def _plan(event: ActionRequested, color: Color) -> Plan:
    """Each action in one or two SSH commands: the steps on the server in one
    (workers/sagas/remote_steps.py), then the readiness looks of a started colour."""

    async def steps(ctx: InstanceContext) -> list[AnyStep]:
        limit, stopping = ctx.config.compose_limit, ctx.config.stopping

        def stop(_: Payload) -> RemoteWork:
            return RemoteWork(stop_command(ctx.layout, color), limit)

        def stopped(_: Payload) -> RemoteWork:
            command = wait_stopped_command(ctx.layout, color, *waited(stopping))
            return RemoteWork(command, wait_limit(stopping))

        def restart(_: Payload) -> RemoteWork:
            return RemoteWork(restart_command(ctx.layout, color), limit)

        def start(payload: Payload) -> RemoteWork:
            return app_up_work(ctx, payload, color, install=True, fresh=False)

        readiness = Step("readiness", lambda: ready(ctx, color))
        by_action: dict[str, list[AnyStep]] = {
            "start": [RemoteStep("app-up", start), readiness],
            "stop": [RemoteStep("app-stop", stop), RemoteStep("stopped", stopped)],
            "restart": [RemoteStep("app-restart", restart), readiness],
        }
        return by_action[event.action]

    return Plan(
        steps=steps,
        succeeded=lambda: RecordActionSucceeded(
            operation_id=event.operation_id, action=event.action
        ),
        failed=lambda step, message: RecordActionFailed(
            operation_id=event.operation_id, action=event.action, step=step, message=message
        ),
    )


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
