"""The final backup of a teardown (ODOO-HOSTING.md §2.10): taken before anything is removed,
to the destination of the instance's schedule, under the teardown's hold on the instance;
kept under that destination's retention like any other. A failure fails the step, so the
teardown stops before the data goes (the instance ends `failed` with the reason); asking
for the removal with `finalBackup=false` skips it."""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from typing import Final

from commands import backup, backup_schedule
from commands.runner import execute_command, load
from events.backup import backup_stream, schedule_stream
from workers.sagas.backup import take_backup
from workers.sagas.backup_access import load_backup
from workers.sagas.context import InstanceContext
from workers.sagas.runtime import Step
from workers.server.remote import StepError

_FINAL: Final = uuid.UUID("f1a1b4c0-7d2e-4b9a-8c3f-6e5d4a3b2c1d")


def final_backup_step(ctx: InstanceContext, removal_operation_id: str, *, skip: bool) -> Step:
    async def run() -> str:
        if skip:
            return "skipped: the removal was asked for with finalBackup=false"
        return await take_final_backup(ctx, removal_operation_id)

    return Step("final-backup", run)


async def take_final_backup(ctx: InstanceContext, removal_operation_id: str) -> str:
    deps, facts = ctx.deps, ctx.facts
    schedule = (
        await load(deps.store, schedule_stream(facts.instance_id), backup_schedule.fold)
    ).state
    if schedule is None:
        return "skipped: the instance has no backup schedule, so no destination to keep it"
    backup_id = str(uuid.uuid5(_FINAL, f"{removal_operation_id}/backup"))
    operation_id = str(uuid.uuid5(_FINAL, f"{removal_operation_id}/operation"))
    stream_id = backup_stream(backup_id)
    key = await deps.vault.seal(stream_id, base64.b64encode(os.urandom(32)).decode())
    command = backup.RequestBackup(
        backup_id=backup_id,
        instance_id=facts.instance_id,
        operation_id=operation_id,
        destination_id=schedule.destination_id,
        reason="final",
        data_key=key,
    )
    await execute_command(
        deps.store, stream_id, backup.fold, backup.decide, command, datetime.now(UTC),
        ctx.trigger.metadata, idempotency_key=f"{operation_id}/requested",
    )  # fmt: skip
    state = await load_backup(deps, backup_id)
    assert not isinstance(state, backup.Absent)
    done = await take_backup(deps, ctx.trigger.metadata, ctx.trigger, state.requested, ctx.locks)
    if not isinstance(done, backup.Completed):
        why = done.message if isinstance(done, backup.Failed) else done.status
        raise StepError(
            f"the final backup {backup_id} failed, so nothing was removed: {why}"
            " (DELETE with finalBackup=false to remove it without one)"
        )
    size = sum(part.size for part in done.parts)
    return f"final backup {backup_id} taken ({size} bytes) to {schedule.destination_id}"
