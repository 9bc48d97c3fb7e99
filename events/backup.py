"""Events of backups: a backup stream (`backup-<uuid>`: taking it, restoring from it, deleting
it), a destination stream (`backupdest-<uuid>`) and an instance's schedule stream
(`backupschedule-<instance uuid>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from events.registry import DomainEvent
from events.secrets import Sealed

BackupReason = Literal["manual", "scheduled", "final", "safety"]
DestinationKind = Literal["local", "sftp", "s3"]
PartName = Literal["database", "filestore", "manifest"]


class BackupPart(msgspec.Struct, frozen=True, kw_only=True):
    """One stored object of a backup: `size` and `sha256` of the plaintext, `stored_size` of
    what the destination holds (encrypted)."""

    name: PartName
    key: str
    size: int
    stored_size: int
    sha256: str


class BackupRequested(DomainEvent, frozen=True, kw_only=True):
    """`data_key` is the backup's own AES-256 key, sealed with the backup stream's Vault key:
    forgetting the stream shreds every copy of the backup at once."""

    backup_id: str
    instance_id: str
    operation_id: str
    destination_id: str
    reason: BackupReason
    data_key: Sealed
    requested_at: datetime
    # The time the schedule was due, for a scheduled backup (one per due time).
    due_at: datetime | None = None


class BackupCompleted(DomainEvent, frozen=True, kw_only=True):
    backup_id: str
    instance_id: str
    operation_id: str
    parts: list[BackupPart]
    completed_at: datetime


class BackupFailed(DomainEvent, frozen=True, kw_only=True):
    backup_id: str
    instance_id: str
    operation_id: str
    step: str
    message: str


class BackupDeletionRequested(DomainEvent, frozen=True, kw_only=True):
    backup_id: str
    instance_id: str
    operation_id: str
    expired: bool  # by the schedule's retention, or asked for


class BackupDeleted(DomainEvent, frozen=True, kw_only=True):
    backup_id: str
    instance_id: str
    operation_id: str


class BackupExpired(DomainEvent, frozen=True, kw_only=True):
    """Deleted by retention: the objects are gone from the destination."""

    backup_id: str
    instance_id: str
    operation_id: str


class RestoreRequested(DomainEvent, frozen=True, kw_only=True):
    """`new_instance`: the target was created for this restore (its create follows this
    event); the restore waits for its provisioning, then runs into it."""

    backup_id: str
    operation_id: str
    source_instance_id: str
    target_instance_id: str
    neutralize: bool
    new_instance: bool = False
    requested_at: datetime | None = None  # None: recorded before restores into new instances


class InstanceRestored(DomainEvent, frozen=True, kw_only=True):
    backup_id: str
    operation_id: str
    target_instance_id: str
    restored_at: datetime


class RestoreFailed(DomainEvent, frozen=True, kw_only=True):
    backup_id: str
    operation_id: str
    target_instance_id: str
    step: str
    message: str


class BackupDestinationCreated(DomainEvent, frozen=True, kw_only=True):
    """`settings` holds what may be shown (host, bucket, path…); `credentials` the sealed
    secret part (a private key or password, an S3 secret key) as a JSON object."""

    destination_id: str
    name: str
    kind: DestinationKind
    settings: dict[str, str]
    credentials: Sealed | None
    created_at: datetime


class BackupDestinationDeleted(DomainEvent, frozen=True, kw_only=True):
    destination_id: str


class BackupScheduleSet(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    cron: str
    timezone: str
    destination_id: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    set_at: datetime


BACKUP_EVENTS: tuple[type[DomainEvent], ...] = (
    BackupRequested,
    BackupCompleted,
    BackupFailed,
    BackupDeletionRequested,
    BackupDeleted,
    BackupExpired,
    RestoreRequested,
    InstanceRestored,
    RestoreFailed,
    BackupDestinationCreated,
    BackupDestinationDeleted,
    BackupScheduleSet,
)


def backup_stream(backup_id: str) -> str:
    return f"backup-{backup_id}"


def destination_stream(destination_id: str) -> str:
    return f"backupdest-{destination_id}"


def schedule_stream(instance_id: str) -> str:
    return f"backupschedule-{instance_id}"
