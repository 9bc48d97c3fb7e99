"""Restoring a backup into a new instance: the restore is recorded on the backup's stream
first (`RestoreRequested` with `new_instance`, naming the new instance's id), then the
instance is created by the create decider (commands/create_instance.py), as POST
/api/instances creates one. The restore saga waits for that instance's provisioning and
restores into it (workers/sagas/restore_new.py).

Recording the restore first means no instance is ever created without its restore asked
for: a create refused (slug taken, no free ports…) records the restore failed at `create`
here, and a process that died between the two appends leaves a restore whose saga finds no
instance and fails it once the create could not still come (restore_new.CREATE_GRACE)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from commands import backup
from commands.create_instance import Created
from commands.refusals import Refusal
from commands.runner import Outcome, execute_command
from events.backup import backup_stream
from events.metadata import EventMetadata
from events.store import EventStore

CREATE_STEP = "create"


@dataclass(frozen=True, slots=True)
class RestoredIntoNew:
    """The restore's request, and the new instance's create."""

    requested: Outcome
    created: Created


async def restore_into_new_instance(
    store: EventStore,
    backup_id: str,
    command: backup.RequestRestore,
    create: Callable[[], Awaitable[Created]],
    *,
    now: datetime,
    metadata: EventMetadata,
) -> RestoredIntoNew:
    """Record `command` (its target the id `create` creates), then `create`. A refusal of
    the create is recorded as the restore's failure and raised as it is (the caller answers
    it as a create's refusal); a refusal of the restore (BackupNotFound, BackupBusy) leaves
    nothing created."""
    assert command.new_instance
    stream_id = backup_stream(backup_id)
    requested = await execute_command(
        store, stream_id, backup.fold, backup.decide, command, now, metadata
    )
    try:
        created = await create()
    except Refusal as e:
        failed = backup.RecordRestoreFailed(
            operation_id=command.operation_id,
            step=CREATE_STEP,
            message=f"the new instance was not created: {e}",
        )
        await execute_command(
            store, stream_id, backup.fold, backup.decide, failed, now, metadata,
            idempotency_key=f"{command.operation_id}/outcome",
        )  # fmt: skip
        raise
    return RestoredIntoNew(requested, created)
