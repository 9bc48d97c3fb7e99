"""The backup read models: each instance's backups (status, sizes, checksums, destination),
the organization's destinations (no credential) and each instance's schedule; and reading
them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from events.backup import (
    BackupCompleted,
    BackupDeleted,
    BackupDeletionRequested,
    BackupDestinationCreated,
    BackupDestinationDeleted,
    BackupExpired,
    BackupFailed,
    BackupPart,
    BackupRequested,
    BackupScheduleSet,
    InstanceRestored,
    RestoreFailed,
    RestoreRequested,
)
from projections.runtime.cursor import Position, decode_cursor, encode_cursor
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, fetch_text


class BackupView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    instance_id: str
    destination_id: str
    reason: str
    status: str  # running | completed | failed | deleting | deleted | expired
    operation_id: str
    parts: list[BackupPart]
    size: int | None
    stored_size: int | None
    failed_step: str | None
    error: str | None
    due_at: datetime | None
    requested_at: datetime
    completed_at: datetime | None
    deleted_at: datetime | None
    last_restore_status: str | None  # restoring | restored | failed
    last_restored_at: datetime | None


def _changed(row: BackupView | None, env: Envelope, **changes: Any) -> BackupView:
    return msgspec.structs.replace(need(row, env), **changes)


def requested(_: BackupView | None, e: BackupRequested, env: Envelope) -> BackupView:
    return BackupView(
        id=e.backup_id,
        org_id=env.meta.org_id,
        instance_id=e.instance_id,
        destination_id=e.destination_id,
        reason=e.reason,
        status="running",
        operation_id=e.operation_id,
        parts=[],
        size=None,
        stored_size=None,
        failed_step=None,
        error=None,
        due_at=e.due_at,
        requested_at=e.requested_at,
        completed_at=None,
        deleted_at=None,
        last_restore_status=None,
        last_restored_at=None,
        version=env.version,
    )


def completed(row: BackupView | None, e: BackupCompleted, env: Envelope) -> BackupView:
    return _changed(
        row,
        env,
        status="completed",
        parts=e.parts,
        size=sum(part.size for part in e.parts),
        stored_size=sum(part.stored_size for part in e.parts),
        completed_at=e.completed_at,
    )


def failed(row: BackupView | None, e: BackupFailed, env: Envelope) -> BackupView:
    return _changed(row, env, status="failed", failed_step=e.step, error=e.message)


def deleting(row: BackupView | None, e: BackupDeletionRequested, env: Envelope) -> BackupView:
    return _changed(row, env, status="deleting", operation_id=e.operation_id)


def deleted(row: BackupView | None, _: BackupDeleted, env: Envelope) -> BackupView:
    return _changed(row, env, status="deleted", deleted_at=env.at)


def expired(row: BackupView | None, _: BackupExpired, env: Envelope) -> BackupView:
    return _changed(row, env, status="expired", deleted_at=env.at)


def restoring(row: BackupView | None, _: RestoreRequested, env: Envelope) -> BackupView:
    return _changed(row, env, last_restore_status="restoring")


def restored(row: BackupView | None, e: InstanceRestored, env: Envelope) -> BackupView:
    return _changed(row, env, last_restore_status="restored", last_restored_at=e.restored_at)


def restore_failed(row: BackupView | None, _: RestoreFailed, env: Envelope) -> BackupView:
    return _changed(row, env, last_restore_status="failed")


BACKUPS: Folder[BackupView] = Folder(
    "backup",
    BackupView,
    {
        BackupRequested: requested,
        BackupCompleted: completed,
        BackupFailed: failed,
        BackupDeletionRequested: deleting,
        BackupDeleted: deleted,
        BackupExpired: expired,
        RestoreRequested: restoring,
        InstanceRestored: restored,
        RestoreFailed: restore_failed,
    },
)


class DestinationView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    kind: str
    settings: dict[str, str]
    created_at: datetime


def destination_created(
    _: DestinationView | None, e: BackupDestinationCreated, env: Envelope
) -> DestinationView:
    return DestinationView(
        id=e.destination_id,
        org_id=env.meta.org_id,
        name=e.name,
        kind=e.kind,
        settings=e.settings,
        created_at=e.created_at,
        version=env.version,
    )


def destination_deleted(
    row: DestinationView | None, _: BackupDestinationDeleted, env: Envelope
) -> None:
    need(row, env)


DESTINATIONS: Folder[DestinationView] = Folder(
    "backupdest",
    DestinationView,
    {BackupDestinationCreated: destination_created, BackupDestinationDeleted: destination_deleted},
)


class ScheduleView(Row, frozen=True, kw_only=True):
    instance_id: str
    org_id: str
    cron: str
    timezone: str
    destination_id: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    set_at: datetime

    @property
    def id(self) -> str:
        """An instance has one schedule: the audit trail names it by the instance's id."""
        return self.instance_id


def schedule_set(_: ScheduleView | None, e: BackupScheduleSet, env: Envelope) -> ScheduleView:
    return ScheduleView(
        instance_id=e.instance_id,
        org_id=env.meta.org_id,
        cron=e.cron,
        timezone=e.timezone,
        destination_id=e.destination_id,
        keep_daily=e.keep_daily,
        keep_weekly=e.keep_weekly,
        keep_monthly=e.keep_monthly,
        set_at=e.set_at,
        version=env.version,
    )


SCHEDULES: Folder[ScheduleView] = Folder(
    "backupschedule", ScheduleView, {BackupScheduleSet: schedule_set}
)

_GONE: Final = b"('deleted', 'expired')"
_GET: Final = b"SELECT to_json(b)::text FROM backups b WHERE org_id = %s AND id = %s"
_backup: Final = msgspec.json.Decoder(BackupView)
_backups: Final = msgspec.json.Decoder(list[BackupView])


async def get_backup(conn: Reader, org_id: str, backup_id: str) -> BackupView | None:
    found = await fetch_text(conn, _GET, (org_id, backup_id))
    return None if found is None else _backup.decode(found)


def _list_query(*, after: bool) -> bytes:
    where = b"org_id = %(org)s AND instance_id = %(instance)s AND status NOT IN " + _GONE
    if after:
        where += b" AND (requested_at, id) < (%(at)s, %(id)s)"
    page = (
        b"SELECT * FROM backups WHERE " + where
        + b" ORDER BY requested_at DESC, id DESC LIMIT %(limit)s"
    )  # fmt: skip
    return (
        b"SELECT coalesce(json_agg(b ORDER BY b.requested_at DESC, b.id DESC), '[]')::text"
        b" FROM (" + page + b") b"
    )


async def list_backups(
    conn: Reader, org_id: str, instance_id: str, *, limit: int, cursor: str | None
) -> tuple[list[BackupView], str | None]:
    """A page of the instance's backups (deleted ones left out), newest first, and the
    cursor of the next page (None at the end). Raises InvalidCursor for a cursor it did not
    return."""
    after = None if cursor is None else decode_cursor(cursor)
    params = {
        "org": org_id,
        "instance": instance_id,
        "at": after.created_at if after else None,
        "id": after.id if after else None,
        "limit": limit + 1,
    }
    found = _backups.decode(
        await fetch_text(conn, _list_query(after=after is not None), params) or "[]"
    )
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], encode_cursor(Position(last.requested_at, last.id))


async def kept_backups(conn: Reader, instance_id: str) -> list[BackupView]:
    """The instance's completed backups, newest first (what retention chooses from)."""
    query = (
        b"SELECT coalesce(json_agg(b ORDER BY b.completed_at DESC, b.id DESC), '[]')::text"
        b" FROM backups b WHERE instance_id = %s AND status = 'completed'"
    )
    return _backups.decode(await fetch_text(conn, query, (instance_id,)) or "[]")


_DESTINATION: Final = (
    b"SELECT to_json(d)::text FROM backup_destinations d WHERE org_id = %s AND id = %s"
)
_DESTINATIONS: Final = (
    b"SELECT coalesce(json_agg(d ORDER BY d.created_at, d.id), '[]')::text"
    b" FROM backup_destinations d WHERE org_id = %s"
)
_destination: Final = msgspec.json.Decoder(DestinationView)
_destinations: Final = msgspec.json.Decoder(list[DestinationView])


async def get_destination(conn: Reader, org_id: str, destination_id: str) -> DestinationView | None:
    found = await fetch_text(conn, _DESTINATION, (org_id, destination_id))
    return None if found is None else _destination.decode(found)


async def list_destinations(conn: Reader, org_id: str) -> list[DestinationView]:
    return _destinations.decode(await fetch_text(conn, _DESTINATIONS, (org_id,)) or "[]")


_SCHEDULE: Final = (
    b"SELECT to_json(s)::text FROM backup_schedules s WHERE org_id = %s AND instance_id = %s"
)
_SCHEDULES: Final = b"SELECT coalesce(json_agg(s), '[]')::text FROM backup_schedules s"
_schedule: Final = msgspec.json.Decoder(ScheduleView)
_schedules: Final = msgspec.json.Decoder(list[ScheduleView])


async def get_schedule(conn: Reader, org_id: str, instance_id: str) -> ScheduleView | None:
    found = await fetch_text(conn, _SCHEDULE, (org_id, instance_id))
    return None if found is None else _schedule.decode(found)


async def all_schedules(conn: Reader) -> list[ScheduleView]:
    """Every organization's schedules (the scheduler's reading)."""
    return _schedules.decode(await fetch_text(conn, _SCHEDULES, ()) or "[]")
