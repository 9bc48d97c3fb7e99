"""Backup, restore, schedule and destination bodies and answers (camelCase; no secret is ever
in an answer: no data key, no credential)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from api.fields import AddonsPath, Branch, EnvVars, Name, Reference, Slug
from events.backup import BackupReason, DestinationKind, PartName
from events.instance import EnvironmentType

Count = Annotated[int, msgspec.Meta(ge=0, le=1000)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class BackupPart(msgspec.Struct, rename="camel", kw_only=True):
    name: PartName
    size: Annotated[int, msgspec.Meta(description="Bytes before encryption")]
    stored_size: Annotated[int, msgspec.Meta(description="Bytes at the destination")]
    sha256: Annotated[str, msgspec.Meta(description="SHA-256 of the part before encryption")]


class Backup(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    instance_id: str
    destination_id: str
    reason: BackupReason
    status: Literal["running", "completed", "failed", "deleting", "deleted", "expired"]
    operation_id: str
    parts: list[BackupPart]
    size: int | None
    stored_size: int | None
    failed_step: str | None
    error: str | None
    requested_at: datetime
    completed_at: datetime | None
    expires_at: Annotated[
        datetime | None,
        msgspec.Meta(description="Kept at least until then by the schedule's retention"),
    ]
    last_restore_status: Literal["restoring", "restored", "failed"] | None
    last_restored_at: datetime | None


class BackupList(msgspec.Struct, rename="camel", kw_only=True):
    backups: list[Backup]
    next_cursor: str | None


class CreateBackupBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    destination_id: Annotated[
        str | None,
        msgspec.Meta(description="Default: the destination of the instance's schedule"),
    ] = None


class NewInstanceBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """An instance to create for the restore: what POST /api/instances takes, but the Odoo
    version and edition, which are the backup's."""

    name: Name
    server_id: uuid.UUID
    slug: Slug | None = None
    environment_type: EnvironmentType = "development"
    project_id: Reference | None = None
    branch: Branch | None = None
    template_id: Reference | None = None
    addons_path: AddonsPath | None = None
    env_vars: EnvVars = {}


class RestoreBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Into `targetInstanceId` or into `newInstance`, created for it (at most one of them;
    default: the backed-up instance itself, after a safety backup). `neutralize`: outgoing
    mail servers and scheduled actions disabled."""

    target_instance_id: str | None = None
    new_instance: NewInstanceBody | None = None
    neutralize: bool = False


class RestoreAccepted(msgspec.Struct, rename="camel", kw_only=True):
    backup_id: str
    operation_id: str
    target_instance_id: str


class ScheduleBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    cron: Annotated[str, msgspec.Meta(min_length=9, max_length=100, examples=["0 3 * * *"])]
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    destination_id: str
    keep_daily: Count = 7
    keep_weekly: Count = 4
    keep_monthly: Count = 3


class Schedule(msgspec.Struct, rename="camel", kw_only=True):
    instance_id: str
    cron: str
    timezone: str
    destination_id: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int
    next_run_at: datetime
    version: int


class DestinationBody(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`local`: `path` on the backed-up instance's server. `sftp`: `host`, `port`, `user`,
    `path`, `hostKey` (pinned, an OpenSSH public key line) and `privateKey` or `password`.
    `s3`: `bucket`, `region`, `endpointUrl`, `prefix`, `accessKeyId`, `secretAccessKey`.
    Credentials are sealed and never returned."""

    name: Text
    kind: DestinationKind
    path: Text | None = None
    host: Text | None = None
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None
    user: Text | None = None
    host_key: Text | None = None
    private_key: Annotated[str, msgspec.Meta(max_length=16384)] | None = None
    password: Text | None = None
    bucket: Text | None = None
    region: Text | None = None
    endpoint_url: Text | None = None
    prefix: Text | None = None
    access_key_id: Text | None = None
    secret_access_key: Text | None = None


class Destination(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    name: str
    kind: DestinationKind
    settings: dict[str, str]
    created_at: datetime


class DestinationList(msgspec.Struct, rename="camel", kw_only=True):
    destinations: list[Destination]
