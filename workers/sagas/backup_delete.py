"""The backup deletion saga (on BackupDeletionRequested, asked for or by retention): every
object of the backup is deleted from its destination (a part never written is "already
gone"), then the backup's data key is shredded, so a copy of the objects kept elsewhere is
unreadable too; then BackupDeleted (or BackupExpired) is recorded."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from commands import backup
from commands.outcome import FailedAt, Succeeded
from commands.runner import execute_command
from events.backup import BackupDeletionRequested, backup_stream
from workers.backups.destinations import Destination, DestinationError
from workers.backups.parts import part_key
from workers.runtime.slots import OperationLocks
from workers.sagas.backup import PARTS
from workers.sagas.backup_access import (
    destination_of,
    instance_context,
    instance_of,
    load_backup,
)
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.sagas.runtime import Step, close, last_started_step, resume
from workers.server.remote import StepError


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    event = trigger.event
    assert isinstance(event, BackupDeletionRequested)
    log = OperationLog(deps.store, event.operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    state = await load_backup(deps, event.backup_id)
    if not isinstance(state, backup.Deleting) or state.operation_id != event.operation_id:
        await _close(log, deps, event, None)
        return
    instance = await instance_of(deps, event.instance_id)
    await log.start("delete-backup", event.instance_id, instance.facts.server_id, deps.worker)
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        ctx = await instance_context(deps, trigger, log, locks, instance)
        opened: list[Destination] = []

        async def purge() -> str:
            destination = await destination_of(deps, state.requested.destination_id, ctx)
            opened.append(destination)
            keys = [part_key(event.instance_id, event.backup_id, name) for name in PARTS]
            for key in keys:
                try:
                    await destination.delete(key)
                except DestinationError as e:
                    raise StepError(str(e)) from e
            return f"deleted {', '.join(keys)}"

        async def shred() -> str:
            await deps.vault.forget(backup_stream(event.backup_id))
            return "the backup's data key is deleted: no copy of it can be read any more"

        try:
            await resume(log, [Step("purge", purge), Step("shred-key", shred)])
        except StepFailed as e:
            await _close(log, deps, event, e)
            return
        except OperationTakenOver:
            return
        finally:
            for held in opened:
                with contextlib.suppress(Exception):
                    await held.close()
    await _record_deleted(deps, trigger, event)
    await _close(log, deps, event, None)


async def _record_deleted(deps: SagaDeps, trigger: Trigger, event: BackupDeletionRequested) -> None:
    await execute_command(
        deps.store, backup_stream(event.backup_id), backup.fold, backup.decide,
        backup.RecordBackupDeleted(operation_id=event.operation_id), datetime.now(UTC),
        trigger.metadata, idempotency_key=f"{event.operation_id}/outcome",
    )  # fmt: skip


async def _close(
    log: OperationLog, deps: SagaDeps, event: BackupDeletionRequested, failure: StepFailed | None
) -> None:
    """A failed deletion leaves the backup `deleting` (DELETE it again to retry: the
    objects already gone are gone)."""
    with contextlib.suppress(OperationTakenOver):
        if log.progress.started is None:
            await log.start("delete-backup", event.instance_id, "", deps.worker)
        if failure is not None:
            await close(log, FailedAt(failure.step, log.mask(failure.message)))
        else:
            await close(log, Succeeded())


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    event = trigger.event
    assert isinstance(event, BackupDeletionRequested)
    log = OperationLog(deps.store, event.operation_id, trigger.metadata)
    await log.load()
    if log.progress.finished:
        return
    step = last_started_step(log) or "start"
    await _close(log, deps, event, StepFailed(step, f"gave up after repeated failures: {error}"))
