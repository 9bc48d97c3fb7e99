"""The backup saga (on BackupRequested): the database dumped inside its db container, the
filestore archived, each streamed through the control plane, sealed with the backup's own
data key and stored at the destination, then a manifest; the outcome is recorded on the
backup's stream (RecordBackupCompleted with every part's size and SHA-256, or
RecordBackupFailed with the step). A part whose step completed is never taken again: a worker
killed mid-backup is replaced by one that carries on from the next part, and the part it was
writing is written anew under the same partial name (never visible under its real key)."""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

import msgspec

from commands import backup
from commands.outcome import FailedAt, Succeeded
from commands.runner import execute_command
from events.backup import BackupPart, BackupRequested, PartName, backup_stream
from events.metadata import EventMetadata
from workers.backups.commands import archive_filestore_command, dump_database_command
from workers.backups.destinations import Destination
from workers.backups.parts import FILE_NAMES, part_key, store_part
from workers.backups.remote_stream import stream_out
from workers.runtime.slots import OperationLocks
from workers.sagas.backup_access import (
    data_key,
    destination_of,
    instance_context,
    instance_of,
    load_backup,
)
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.sagas.runtime import Step, close, last_started_step, resume

PARTS: tuple[PartName, ...] = ("database", "filestore", "manifest")
# Longer than any dump should take; the server ends the command then (workers/ssh/runner.py).
TIME_LIMIT: Final = 6 * 3600.0
_part = msgspec.json.Decoder(BackupPart)
_encode = msgspec.json.Encoder()


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    requested = trigger.event
    assert isinstance(requested, BackupRequested)
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        # One operation on an instance at a time: no restart or restore mid-dump.
        await locks.hold(f"instance {requested.instance_id}", deps.config.lock_timeout)
        await take_backup(deps, trigger.metadata, trigger, requested, locks)


async def take_backup(
    deps: SagaDeps,
    metadata: EventMetadata,
    trigger: Trigger,
    requested: BackupRequested,
    locks: OperationLocks,
) -> backup.BackupState:
    """Run (or finish) the backup's operation with the instance's lock held by the caller;
    the backup's state once its outcome is recorded."""
    log = OperationLog(deps.store, requested.operation_id, metadata)
    await log.load()
    state = await load_backup(deps, requested.backup_id)
    if not isinstance(state, backup.Running):
        await _close_as(log, state)
        return state
    if log.progress.finished:
        return state
    instance = await instance_of(deps, requested.instance_id)
    await log.start("backup", requested.instance_id, instance.facts.server_id, deps.worker)
    ctx = await instance_context(deps, trigger, log, locks, instance)
    opened: list[Destination] = []

    async def destination() -> Destination:
        if not opened:
            opened.append(await destination_of(deps, requested.destination_id, ctx))
        return opened[0]

    try:
        key = await data_key(deps, requested)
        steps = [Step(name, _runner(ctx, requested, name, key, destination)) for name in PARTS]
        await resume(log, steps)
    except StepFailed as e:
        command: backup.RecordBackupFailed | backup.RecordBackupCompleted = (
            backup.RecordBackupFailed(
                operation_id=requested.operation_id, step=e.step, message=log.mask(e.message)
            )
        )
    except OperationTakenOver:
        return state
    else:
        parts = tuple(_part.decode(log.progress.completed[name]) for name in PARTS)
        command = backup.RecordBackupCompleted(operation_id=requested.operation_id, parts=parts)
    finally:
        for held in opened:
            with contextlib.suppress(Exception):
                await held.close()
    return await _settle(deps, metadata, log, requested, command)


def _runner(
    ctx: InstanceContext,
    requested: BackupRequested,
    name: PartName,
    key: bytes,
    destination: Callable[[], Awaitable[Destination]],
) -> Callable[[], Awaitable[str]]:
    created = ctx.facts.created
    object_key = part_key(requested.instance_id, requested.backup_id, name)

    def source() -> AsyncIterator[bytes]:
        if name == "manifest":
            return _once(_encode.encode(_manifest(ctx, requested)))
        command = (
            dump_database_command(ctx.layout, created.db_name)
            if name == "database"
            else archive_filestore_command(ctx.layout, created.db_name)
        )
        what = "pg_dump" if name == "database" else "the filestore archive"
        return stream_out(
            ctx.deps.runner, ctx.remote.server, command, what=what, time_limit=TIME_LIMIT
        )

    async def run() -> str:
        part = await store_part(await destination(), object_key, name, key, source())
        return _encode.encode(part).decode()

    return run


def _manifest(ctx: InstanceContext, requested: BackupRequested) -> dict[str, object]:
    """What the backup holds (README of the backup for a person, and checked on restore)."""
    created, done = ctx.facts.created, ctx.log.progress.completed
    parts = [_part.decode(done[name]) for name in PARTS if name in done]
    return {
        "format": "odoofleet-backup/1",
        "backupId": requested.backup_id,
        "instanceId": requested.instance_id,
        "slug": ctx.facts.slug,
        "odooVersion": created.odoo_version,
        "odooEdition": created.odoo_edition,
        "database": created.db_name,
        "parts": [
            {"name": part.name, "file": FILE_NAMES[part.name], "size": part.size,
             "sha256": part.sha256}
            for part in parts
        ],
        "odoofleetVersion": _version(),
        "reason": requested.reason,
        "createdAt": datetime.now(UTC).isoformat(),
    }  # fmt: skip


def _version() -> str:
    try:
        return importlib.metadata.version("odoofleet")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _settle(
    deps: SagaDeps,
    metadata: EventMetadata,
    log: OperationLog,
    requested: BackupRequested,
    command: backup.RecordBackupCompleted | backup.RecordBackupFailed,
) -> backup.BackupState:
    """The outcome on the backup's stream first (once: its event ids derive from the
    operation), then the operation's end, which makes a redelivery do nothing."""
    await execute_command(
        deps.store,
        backup_stream(requested.backup_id),
        backup.fold,
        backup.decide,
        command,
        datetime.now(UTC),
        metadata,
        idempotency_key=f"{requested.operation_id}/outcome",
    )
    state = await load_backup(deps, requested.backup_id)
    with contextlib.suppress(OperationTakenOver):
        await _close_as(log, state)
    return state


async def _close_as(log: OperationLog, state: backup.BackupState) -> None:
    if log.progress.finished or isinstance(state, backup.Absent | backup.Running):
        return
    if log.progress.started is None:
        requested = state.requested
        await log.start("backup", requested.instance_id, "", "")
    if isinstance(state, backup.Failed):
        await close(log, FailedAt(state.step, state.message))
    else:
        await close(log, Succeeded())


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    """The failure of a backup that kept failing without a recorded step failure (its
    server unreachable every time, say)."""
    requested = trigger.event
    assert isinstance(requested, BackupRequested)
    log = OperationLog(deps.store, requested.operation_id, trigger.metadata)
    await log.load()
    step = last_started_step(log) or "start"
    command = backup.RecordBackupFailed(
        operation_id=requested.operation_id,
        step=step,
        message=f"gave up after repeated failures: {error}",
    )
    await _settle(deps, trigger.metadata, log, requested, command)
