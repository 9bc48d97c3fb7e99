"""The redeploy saga (on RedeployRequested): a release to the idle colour with a proxy switch
(ODOO-HOSTING.md §2.9, flow A), for code or for changed settings (envVars, addonsPath). The
new colour starts on freshly rendered files and must be ready before the route moves to it;
only then is the old colour stopped and activeColor changed, so a failure on the way leaves
the old colour serving.

The colour started is the one idle when the redeploy runs, whatever `target_color` says. The
target is the idle colour when the redeploy was asked for, and an earlier redeploy may have
moved the route since: two quick updates each ask for a redeploy to the same colour, and the
second must still deploy (so the second change reaches the server) rather than find its
colour serving and give up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from commands.instance_outcomes import REMOVING, RecordActionFailed, RecordRedeployed
from commands.instance_state import Abandoned, Existing, Removed, Removing
from events.instance import Color, RedeployRequested, idle_color
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
from workers.sagas.provision_steps import app_up, ready
from workers.sagas.proxy_steps import switch_route
from workers.sagas.readiness import wait_limit, waited
from workers.sagas.runtime import Step
from workers.server.commands import stop_command, wait_stopped_command
from workers.server.remote import StepError
from workers.server.shell import script
from workers.ssh.errors import SshError

StepRun = Callable[[], Awaitable[str]]
STARTING_APPLIES = "whatever starts it renders the latest settings"


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, RedeployRequested)
    return InstanceOperation(
        "redeploy", event.operation_id, event.instance_id, lambda state: react(event, state)
    )


def react(event: RedeployRequested, state: Existing) -> Reaction:
    if isinstance(state, Removing | Abandoned | Removed):
        return Cancel(REMOVING)
    facts = state.facts
    if facts.active_color is None:
        return Cancel(f"nothing serves yet: {STARTING_APPLIES}")
    if facts.stopped_on_purpose:
        return Cancel(f"the instance is stopped: {STARTING_APPLIES}")
    return _plan(event, facts.active_color)


def _plan(event: RedeployRequested, old: Color) -> Plan:
    new = idle_color(old)

    async def steps(ctx: InstanceContext) -> list[Step]:
        async def switch() -> str:
            return await switch_route(ctx.remote, ctx.proxy, ctx.layout, ctx.spec(), new)

        async def stop_old() -> str:
            # The switch is done: failing here would leave activeColor naming the colour
            # that no longer serves. A colour that will not stop is reported, not fatal.
            stopping = ctx.config.stopping
            waited_for = wait_stopped_command(ctx.layout, old, *waited(stopping))
            command = script(stop_command(ctx.layout, old), waited_for)
            limit = ctx.config.compose_limit + wait_limit(stopping)
            try:
                return await ctx.remote.check(command, time_limit=limit)
            except StepError as e:
                return f"{ctx.layout.app_container(old)} was left running: {e}"

        def stopping_new_on_failure(run: StepRun) -> StepRun:
            """Until the route moved, a failure leaves the old colour serving; the new one is
            stopped, not left in a restart loop (which also slowed the next redeploy)."""

            async def guarded() -> str:
                try:
                    return await run()
                except StepError as e:
                    raise StepError(f"{e}; {await stop_new()}") from e

            return guarded

        async def stop_new() -> str:
            name = ctx.layout.app_container(new)
            try:
                await ctx.remote.check(stop_command(ctx.layout, new))
            except (StepError, SshError) as e:
                return f"{name} could not be stopped: {e}"
            return f"{name} was stopped"

        return [
            Step(f"app-up-{new}", stopping_new_on_failure(lambda: app_up(ctx, new))),
            Step(f"readiness-{new}", stopping_new_on_failure(lambda: ready(ctx, new))),
            Step(f"route-{new}", stopping_new_on_failure(switch)),
            Step(f"stop-{old}", stop_old),
        ]

    return Plan(
        steps=steps,
        succeeded=lambda: RecordRedeployed(operation_id=event.operation_id, active_color=new),
        failed=lambda step, message: RecordActionFailed(
            operation_id=event.operation_id, action="redeploy", step=step, message=message
        ),
    )


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
