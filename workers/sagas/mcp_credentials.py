"""The MCP credentials saga (on McpCredentialsRequested, after the first provisioning or a
rotation): `odoo shell` in the running colour creates the dedicated API user if missing,
revokes its earlier keys and generates a new one (workers/odoo/api_user.py); the key, sealed
under the instance's data key, is the operation's outcome (McpCredentialsIssued). It is
recorded by the step itself, the moment Odoo made it: a key revoked by a later run of the step
can then never be the one in force, and a worker dying after the step leaves the operation
settled (its redelivery closes it without running anything)."""

from __future__ import annotations

from typing import Final

from commands.instance_outcomes import (
    RecordMcpCredentialsFailed,
    RecordMcpCredentialsIssued,
    RecordOutcome,
)
from commands.instance_state import InstanceFacts
from commands.refusals import OutcomeOverruled
from events.instance import McpCredentialsRequested, instance_stream
from workers.odoo.api_user import (
    ApiUserOutputError,
    api_user_command,
    api_user_script,
    api_user_script_path,
    parse_api_user_output,
)
from workers.sagas.context import InstanceContext
from workers.sagas.instance_saga import Plan, record_outcome
from workers.sagas.running_odoo import RunningOdooSaga, mask_from_now_on, running_color
from workers.sagas.runtime import Step
from workers.server.remote import StepError


def _plan(event: McpCredentialsRequested, instance: InstanceFacts) -> Plan:
    # The step's outcome, for `succeeded`: the step records it before it completes, so a
    # `succeeded` without it cannot happen (a completed step means a settled operation).
    issued: list[RecordOutcome] = []

    async def steps(ctx: InstanceContext) -> list[Step]:
        async def issue_key() -> str:
            issued.append(await _issue(ctx, event, instance))
            return "the MCP API user has a new key; the earlier ones are revoked"

        return [Step("issue-key", issue_key)]

    return Plan(
        steps=steps,
        succeeded=lambda: issued[-1],
        failed=lambda step, message: RecordMcpCredentialsFailed(
            operation_id=event.operation_id, step=step, message=message
        ),
    )


async def _issue(
    ctx: InstanceContext, event: McpCredentialsRequested, instance: InstanceFacts
) -> RecordOutcome:
    color = running_color(
        instance, nothing_to="create the key in", then="rotate the MCP credentials"
    )
    layout, db_name = ctx.layout, ctx.spec().db_name
    script = api_user_script().encode()
    await ctx.remote.upload(api_user_script_path(layout), script, 0o600)
    command = api_user_command(layout, db_name, color)
    output = await ctx.remote.check(command, time_limit=ctx.config.compose_limit)
    try:
        credentials = parse_api_user_output(output)
    except ApiUserOutputError as e:
        raise StepError(f"Odoo gave no API key: {e}") from None
    mask_from_now_on(ctx.log, credentials.key)
    sealed = await ctx.deps.vault.seal(instance_stream(event.instance_id), credentials.key)
    outcome = RecordMcpCredentialsIssued(
        operation_id=event.operation_id, login=credentials.login, api_key=sealed
    )
    key = f"{event.operation_id}/outcome"
    try:
        await record_outcome(ctx.deps, ctx.trigger, event.instance_id, outcome, key=key)
    except OutcomeOverruled as e:
        raise StepError(f"the key was not recorded: {e.reason}") from None
    return outcome


SAGA: Final = RunningOdooSaga("mcp-credentials", McpCredentialsRequested, _plan)
react, handle, exhausted = SAGA.react, SAGA.handle, SAGA.exhausted
