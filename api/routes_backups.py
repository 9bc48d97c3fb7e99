"""Backups of an instance (take one, list them, read one, delete one, restore one) and its
backup schedule. Routes keyed by a backup id check that an API key limited to instances
reaches the backup's instance (404 otherwise), as the instance routes do."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from croniter import croniter  # type: ignore[import-untyped]
from litestar import Response, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from api.auth import Forbidden, Principal, needs
from api.errors import FieldError, InvalidRequest, problem
from api.restore_new import restore_into_new
from api.services import Deps, Services
from api.web import POSITION_HEADER, AuthRequest, MinPosition, metadata_for, problems
from api.wire_backups import (
    Backup,
    BackupList,
    CreateBackupBody,
    RestoreAccepted,
    RestoreBody,
    Schedule,
    ScheduleBody,
)
from api.wire_backups import (
    BackupPart as ShownPart,
)
from commands import backup, backup_destination, backup_schedule
from commands.backup_retention import expires_at
from commands.instance_state import Abandoned, Absent, Existing, Removed, Removing
from commands.instance_state import fold as instance_fold
from commands.runner import Outcome, execute_command, load
from events.backup import backup_stream, destination_stream, schedule_stream
from events.instance import instance_stream
from events.secrets import Sealed
from projections.backups import (
    BACKUPS,
    BackupView,
    ScheduleView,
    get_backup,
    get_schedule,
    list_backups,
)
from projections.runtime.fold import fold_stream
from workers.backups.destinations import DestinationError
from workers.backups.download import NotDownloadable, odoo_download
from workers.server.remote import StepError
from workers.ssh.errors import SshError

MANAGE: Final = needs("manage:backups")
VIEW: Final = needs("view:backups")
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size")]
Cursor = Annotated[str | None, QueryParameter(max_length=200, description="From `nextCursor`")]
_TAGS: Final = ["backups"]
_READS: Final = ("backups",)
_SHOWN: Final = {f.name for f in msgspec.structs.fields(Backup)} - {"parts", "expires_at"}


@post(
    "/instances/{instance_id:uuid}/backups",
    operation_id="createBackup",
    summary="Back up an instance",
    status_code=202,
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 409, 503),
    tags=_TAGS,
)
async def create(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    data: JSONBody[CreateBackupBody | None] = None,
) -> Response[Backup]:
    """The database (pg_dump, custom format), the filestore and a manifest, encrypted with a
    key of the backup's own, stored at the destination; follow it with GET /backups/{id}
    (or the operation `operationId`)."""
    principal = request.user
    iid = str(instance_id)
    await _running_instance(services, principal, iid)
    destination_id = (data.destination_id if data else None) or await _scheduled_destination(
        services, principal, iid
    )
    await _check_destination(services, principal, destination_id)
    backup_id, operation_id = str(uuid.uuid4()), str(uuid.uuid4())
    command = backup.RequestBackup(
        backup_id=backup_id,
        instance_id=iid,
        operation_id=operation_id,
        destination_id=destination_id,
        reason="manual",
        data_key=await new_data_key(services, backup_id),
    )
    outcome = await _execute(services, request, backup_id, command)
    shown = await _current(services, principal, backup_id)
    headers = {"Location": f"/api/backups/{backup_id}", **_position(outcome)}
    return Response(shown, status_code=202, headers=headers)


@get(
    "/instances/{instance_id:uuid}/backups",
    operation_id="listBackups",
    summary="List an instance's backups",
    opt=VIEW,
    responses=problems(400, 401, 403, 404, 503),
    tags=_TAGS,
)
async def list_all(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    limit: Limit = 20,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> BackupList:
    """Newest first; deleted and expired backups are left out."""
    principal = request.user
    iid = str(instance_id)
    await _instance(services, principal, iid)
    await services.reads.before_read(principal, min_position, _READS)
    found, after = await list_backups(
        services.pool, principal.org_id, iid, limit=limit, cursor=cursor
    )
    schedule = await get_schedule(services.pool, principal.org_id, iid)
    return BackupList(backups=[shown(view, schedule) for view in found], next_cursor=after)


@get(
    "/backups/{backup_id:uuid}",
    operation_id="getBackup",
    summary="Get a backup",
    opt=VIEW,
    responses=problems(401, 403, 404, 503),
    tags=_TAGS,
)
async def get_one(
    request: AuthRequest,
    services: Deps,
    backup_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> Backup:
    principal = request.user
    await services.reads.before_read(principal, min_position, _READS)
    view = await get_backup(services.pool, principal.org_id, str(backup_id))
    if view is None or not principal.reaches(view.instance_id):
        raise _not_found()
    return shown(view, await get_schedule(services.pool, principal.org_id, view.instance_id))


@delete(
    "/backups/{backup_id:uuid}",
    operation_id="deleteBackup",
    summary="Delete a backup (purged from its destination)",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 409, 503),
    tags=_TAGS,
)
async def remove(
    request: AuthRequest, services: Deps, backup_id: FromPath[uuid.UUID]
) -> Response[Backup]:
    principal = request.user
    bid = str(backup_id)
    await _current(services, principal, bid)
    command = backup.DeleteBackup(operation_id=str(uuid.uuid4()))
    outcome = await _execute(services, request, bid, command)
    return Response(
        await _current(services, principal, bid), status_code=202, headers=_position(outcome)
    )


@post(
    "/backups/{backup_id:uuid}/restore",
    operation_id="restoreBackup",
    summary="Restore a backup into an instance, or into a new one",
    status_code=202,
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 409, 503),
    tags=_TAGS,
)
async def restore(
    request: AuthRequest,
    services: Deps,
    backup_id: FromPath[uuid.UUID],
    data: JSONBody[RestoreBody | None] = None,
) -> Response[RestoreAccepted]:
    """Every part is checked against its recorded SHA-256 first (a mismatch refuses the
    restore). Into the backed-up instance itself, a safety backup is taken first; then the
    app is stopped, the database and filestore replaced, the app started and checked.
    `newInstance` creates the instance (as POST /instances, with the backup's Odoo version
    and edition) and restores into it once it is provisioned. Needs manage:instances too."""
    principal = request.user
    if not principal.may("manage:instances"):
        raise Forbidden("manage:instances")
    bid = str(backup_id)
    view = await _current(services, principal, bid)
    body = data or RestoreBody()
    if body.new_instance is not None:
        if body.target_instance_id is not None:
            raise InvalidRequest(
                FieldError("newInstance", "give targetInstanceId or newInstance, not both")
            )
        return await restore_into_new(
            request, services, bid, view.instance_id, body.new_instance,
            neutralize=body.neutralize,
        )  # fmt: skip
    target = body.target_instance_id or view.instance_id
    try:
        uuid.UUID(target)
    except ValueError as e:
        raise InvalidRequest(FieldError("targetInstanceId", "not an instance id")) from e
    await _running_instance(services, principal, target, field="targetInstanceId")
    operation_id = str(uuid.uuid4())
    command = backup.RequestRestore(
        operation_id=operation_id, target_instance_id=target, neutralize=body.neutralize
    )
    outcome = await _execute(services, request, bid, command)
    accepted = RestoreAccepted(backup_id=bid, operation_id=operation_id, target_instance_id=target)
    return Response(accepted, status_code=202, headers=_position(outcome))


@get(
    "/backups/{backup_id:uuid}/download",
    operation_id="downloadBackup",
    summary="Download a backup as Odoo's own zip",
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 409, 503),
    media_type="application/zip",
    tags=_TAGS,
)
async def download(
    request: AuthRequest,
    services: Deps,
    backup_id: FromPath[uuid.UUID],
    format: Annotated[  # noqa: ARG001 (one format today; the parameter names it)
        Literal["odoo"],
        QueryParameter(description="`odoo`: the zip Odoo's database manager restores"),
    ],
) -> Stream:
    """A zip of `dump.sql`, `filestore/` and `manifest.json`, as Odoo's database manager
    writes them (restorable there, so a customer can leave with their data), streamed from
    the destination; the SQL is produced by pg_restore in the instance's db container."""
    principal = request.user
    bid = str(backup_id)
    await _current(services, principal, bid)
    state = (await load(services.store, backup_stream(bid), backup.fold)).state
    if not isinstance(state, backup.Completed):
        raise problem(409, "backup-busy", f"the backup is {state.status}, not completed")
    instance = await _running_instance(services, principal, state.requested.instance_id)
    chunks = odoo_download(
        services.store, services.vault, services.server_addresses, state, instance
    )
    try:
        first = await anext(chunks)
    except NotDownloadable as e:
        raise problem(409, "not-downloadable", str(e)) from e
    except (StepError, SshError, DestinationError) as e:
        raise problem(409, "not-downloadable", f"the backup cannot be read now: {e}") from e

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    name = f"{instance.facts.slug}-{bid[:8]}.zip"
    return Stream(
        body(),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@put(
    "/instances/{instance_id:uuid}/backup-schedule",
    operation_id="setBackupSchedule",
    summary="Set an instance's backup schedule and retention",
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 503),
    tags=_TAGS,
)
async def set_schedule(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    data: JSONBody[ScheduleBody],
) -> Response[Schedule]:
    """`cron` (5 fields) in `timezone`; a missed time (workers down) runs once when they
    are back. Retention keeps the newest backup of each of the last `keepDaily` days,
    `keepWeekly` weeks and `keepMonthly` months; the rest expire, each deletion recorded."""
    principal = request.user
    iid = str(instance_id)
    await _instance(services, principal, iid)
    zone = _zone(data.timezone)
    if not croniter.is_valid(data.cron) or len(data.cron.split()) != 5:
        raise InvalidRequest(FieldError("cron", "not a 5-field cron expression"))
    await _check_destination(services, principal, data.destination_id)
    command = backup_schedule.SetSchedule(instance_id=iid, **msgspec.structs.asdict(data))
    outcome = await execute_command(
        services.store, schedule_stream(iid), backup_schedule.fold,
        backup_schedule.decide, command, datetime.now(UTC), metadata_for(request),
    )  # fmt: skip
    next_run = croniter(data.cron, datetime.now(zone)).get_next(datetime).astimezone(UTC)
    answer = Schedule(
        instance_id=iid, **msgspec.structs.asdict(data), next_run_at=next_run,
        version=outcome.version,
    )  # fmt: skip
    return Response(answer, headers=_position(outcome))


async def new_data_key(services: Services, backup_id: str) -> Sealed:
    """A random AES-256 key for one backup, sealed with its stream's Vault key."""
    key = base64.b64encode(os.urandom(32)).decode()
    return await services.vault.seal(backup_stream(backup_id), key)


def shown(view: BackupView, schedule: ScheduleView | None) -> Backup:
    values = msgspec.structs.asdict(view)
    parts = [
        ShownPart(name=p.name, size=p.size, stored_size=p.stored_size, sha256=p.sha256)
        for p in view.parts
    ]
    kept = {name: values[name] for name in _SHOWN if name in values}
    return Backup(**kept, parts=parts, expires_at=_expiry(view, schedule))


def _expiry(view: BackupView, schedule: ScheduleView | None) -> datetime | None:
    """When the schedule's retention lets the backup go; None for a backup no retention
    deletes (manual, safety and final backups are kept until deleted) and for one over."""
    if view.due_at is None or schedule is None or view.status not in ("running", "completed"):
        return None
    return expires_at(
        view.completed_at or view.due_at,
        schedule.cron,
        schedule.timezone,
        keep_daily=schedule.keep_daily,
        keep_weekly=schedule.keep_weekly,
        keep_monthly=schedule.keep_monthly,
    )


async def _current(services: Services, principal: Principal, backup_id: str) -> Backup:
    """The backup folded from its own stream (exact right after a write)."""
    view = await fold_stream(services.store, BACKUPS, backup_stream(backup_id))
    if view is None or view.org_id != principal.org_id or not principal.reaches(view.instance_id):
        raise _not_found()
    return shown(view, await get_schedule(services.pool, principal.org_id, view.instance_id))


async def _execute(
    services: Services, request: AuthRequest, backup_id: str, command: backup.BackupCommand
) -> Outcome:
    try:
        return await execute_command(
            services.store, backup_stream(backup_id), backup.fold,
            backup.decide, command, datetime.now(UTC), metadata_for(request),
        )  # fmt: skip
    except backup.BackupNotFound as e:
        raise problem(404, "not-found", str(e)) from e
    except backup.BackupBusy as e:
        raise problem(409, "backup-busy", str(e)) from e


async def _instance(services: Services, principal: Principal, instance_id: str) -> Existing:
    loaded = await load(
        services.store, instance_stream(instance_id), instance_fold,
        org_id=principal.org_id,
    )  # fmt: skip
    state = loaded.state
    if isinstance(state, Absent | Removed) or not principal.reaches(instance_id):
        raise problem(404, "not-found", "instance not found")
    return state


async def _running_instance(
    services: Services, principal: Principal, instance_id: str, *, field: str | None = None
) -> Existing:
    """An instance that was provisioned and is not being removed (its data can be read or
    replaced); with `field`, an unknown one is a 400 naming the body's field."""
    try:
        state = await _instance(services, principal, instance_id)
    except Exception:
        if field is None:
            raise
        raise InvalidRequest(FieldError(field, "no such instance")) from None
    if isinstance(state, Removing | Abandoned):
        raise problem(409, "action-not-allowed", f"the instance is {state.status}")
    if state.facts.active_color is None:
        raise problem(409, "action-not-allowed", "the instance was never provisioned")
    return state


async def _scheduled_destination(services: Services, principal: Principal, iid: str) -> str:
    loaded = await load(
        services.store, schedule_stream(iid), backup_schedule.fold, org_id=principal.org_id
    )
    if loaded.state is None:
        raise InvalidRequest(
            FieldError("destinationId", "required: the instance has no backup schedule")
        )
    return loaded.state.destination_id


async def _check_destination(services: Services, principal: Principal, destination_id: str) -> None:
    """The destination's own stream, not its read model: one created a moment ago counts."""
    try:
        uuid.UUID(destination_id)
    except ValueError:
        found = False
    else:
        loaded = await load(
            services.store, destination_stream(destination_id), backup_destination.fold,
            org_id=principal.org_id,
        )  # fmt: skip
        found = isinstance(loaded.state, backup_destination.Active)
    if not found:
        raise InvalidRequest(FieldError("destinationId", "no such backup destination"))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise InvalidRequest(FieldError("timezone", "not an IANA time zone")) from e


def _not_found() -> Exception:
    return problem(404, "not-found", "backup not found")


def _position(outcome: Outcome) -> dict[str, str]:
    return {} if outcome.position is None else {POSITION_HEADER: str(outcome.position)}
