"""Backup requests as the API appends them (through the deciders), for the saga tests."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime

from builders import meta

from commands import backup, backup_destination
from commands.runner import execute_command
from events.backup import BackupPart, DestinationKind, backup_stream, destination_stream
from events.secrets import Vault
from events.store import EventStore

ORG = "org-a"


async def create_destination(
    store: EventStore,
    vault: Vault,
    kind: DestinationKind,
    settings: dict[str, str],
    credentials: dict[str, str] | None = None,
    org: str = ORG,
) -> str:
    destination_id = str(uuid.uuid4())
    stream_id = destination_stream(destination_id)
    sealed = None if not credentials else await vault.seal(stream_id, json.dumps(credentials))
    command = backup_destination.CreateDestination(
        destination_id=destination_id,
        name=f"{kind} test",
        kind=kind,
        settings=settings,
        credentials=sealed,
    )
    await execute_command(
        store, stream_id, backup_destination.fold, backup_destination.decide,
        command, datetime.now(UTC), meta(org),
    )  # fmt: skip
    return destination_id


async def request_backup(
    store: EventStore,
    vault: Vault,
    instance_id: str,
    destination_id: str,
    org: str = ORG,
    *,
    due_at: datetime | None = None,
) -> tuple[str, str]:
    """(backup id, operation id); a scheduled backup when `due_at` is given."""
    backup_id, operation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stream_id = backup_stream(backup_id)
    key = await vault.seal(stream_id, base64.b64encode(os.urandom(32)).decode())
    command = backup.RequestBackup(
        backup_id=backup_id,
        instance_id=instance_id,
        operation_id=operation_id,
        destination_id=destination_id,
        reason="manual" if due_at is None else "scheduled",
        data_key=key,
        due_at=due_at,
    )
    await execute_command(
        store, stream_id, backup.fold, backup.decide, command,
        datetime.now(UTC), meta(org),
    )  # fmt: skip
    return backup_id, operation_id


async def request_restore(
    store: EventStore,
    backup_id: str,
    target_instance_id: str,
    *,
    neutralize: bool = False,
    org: str = ORG,
) -> str:
    operation_id = str(uuid.uuid4())
    command = backup.RequestRestore(
        operation_id=operation_id, target_instance_id=target_instance_id, neutralize=neutralize
    )
    await execute_command(
        store, backup_stream(backup_id), backup.fold, backup.decide, command,
        datetime.now(UTC), meta(org),
    )  # fmt: skip
    return operation_id


async def complete_backup(
    store: EventStore, backup_id: str, operation_id: str, now: datetime | None = None
) -> None:
    """Record the backup as its saga would on success (for tests that do not run it)."""
    part = BackupPart(name="database", key=f"x/{backup_id}/database.dump.ofb", size=1,
                      stored_size=50, sha256="00")  # fmt: skip
    command = backup.RecordBackupCompleted(operation_id=operation_id, parts=(part,))
    await execute_command(
        store, backup_stream(backup_id), backup.fold, backup.decide, command,
        now or datetime.now(UTC), meta(ORG),
    )  # fmt: skip
