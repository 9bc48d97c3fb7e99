"""The audit trail: one row per auditable event, with who, from where, and what changed, and
its search with the filters of `GET /api/audit-logs` and `odoofleet audit`.

Before/after states come from the audit projection's own fold of each instance and server
stream (the same Folders the read models use), kept in `audit_subjects`: an update records
the fields it changed, a creation the whole new state. Secrets are masked (API.md).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from psycopg import AsyncConnection

from events.api_key import ApiKeyCreated, ApiKeyRevoked
from events.backup import (
    BackupCompleted,
    BackupDeletionRequested,
    BackupDestinationCreated,
    BackupDestinationDeleted,
    BackupExpired,
    BackupFailed,
    BackupRequested,
    BackupScheduleSet,
    InstanceRestored,
    RestoreFailed,
    RestoreRequested,
)
from events.domain import (
    CertificateFailed,
    CertificateIssued,
    CertificateRenewed,
    DomainAdded,
    DomainRemoved,
    DomainVerificationFailed,
    DomainVerified,
    PrimaryDomainChanged,
)
from events.instance import (
    ActionFailed,
    ActionRequested,
    AdminCredentialsRevealed,
    AdminPasswordRotationRequested,
    EnvVarsRevealed,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRemovalForced,
    InstanceUpdated,
    McpCredentialsRequested,
    ProvisioningFailed,
    RemovalAbandoned,
    RemovalRequested,
)
from events.mcp import McpToolCalled
from events.registry import DomainEvent, EventRegistry
from events.server import ServerDeleted, ServerRegistered, ServerValidated, ServerValidationFailed
from events.store import RecordedEvent
from events.webhook import (
    WebhookEndpointChanged,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointEnabled,
    WebhookSecretRotated,
)
from projections.api_keys import API_KEYS
from projections.audit_changes import changes
from projections.backups import BACKUPS, DESTINATIONS, SCHEDULES
from projections.domains import DOMAINS
from projections.instances import INSTANCES
from projections.runtime.buffer import RowBuffer
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, RowStore, fold_batch
from projections.runtime.reader import Reader, connection
from projections.runtime.tables import as_json
from projections.servers import SERVERS
from projections.webhooks import WEBHOOKS


def _fixed(action: str) -> Callable[[Any], str]:
    return lambda _: action


def _control(e: ActionRequested) -> str:
    return {"start": "instance.started", "stop": "instance.stopped"}.get(
        e.action, "instance.restarted"
    )


ACTIONS: Final[Mapping[type[DomainEvent], Callable[[Any], str]]] = {
    InstanceCreated: _fixed("instance.created"),
    InstanceUpdated: _fixed("instance.updated"),
    ActionRequested: _control,
    RemovalRequested: _fixed("instance.deleted"),
    InstanceProvisioned: _fixed("instance.provisioned"),
    ProvisioningFailed: _fixed("instance.failed"),
    ActionFailed: _fixed("instance.failed"),
    RemovalAbandoned: _fixed("instance.failed"),
    InstanceRemovalForced: _fixed("instance.force_deleted"),
    AdminCredentialsRevealed: _fixed("instance.credentials_revealed"),
    EnvVarsRevealed: _fixed("instance.secrets_revealed"),
    AdminPasswordRotationRequested: _fixed("instance.credentials_rotated"),
    McpCredentialsRequested: _fixed("instance.mcp_credentials_rotated"),
    ServerRegistered: _fixed("server.created"),
    ServerValidated: _fixed("server.validated"),
    ServerValidationFailed: _fixed("server.validated"),
    ServerDeleted: _fixed("server.deleted"),
    DomainAdded: _fixed("domain.added"),
    DomainVerified: _fixed("domain.verified"),
    DomainVerificationFailed: _fixed("domain.verification_failed"),
    PrimaryDomainChanged: _fixed("domain.made_primary"),
    CertificateIssued: _fixed("domain.certificate_issued"),
    CertificateRenewed: _fixed("domain.certificate_renewed"),
    CertificateFailed: _fixed("domain.certificate_failed"),
    DomainRemoved: _fixed("domain.removed"),
    BackupRequested: _fixed("backup.requested"),
    BackupCompleted: _fixed("backup.completed"),
    BackupFailed: _fixed("backup.failed"),
    BackupDeletionRequested: _fixed("backup.deleted"),
    BackupExpired: _fixed("backup.expired"),
    RestoreRequested: _fixed("backup.restore_requested"),
    InstanceRestored: _fixed("backup.restored"),
    RestoreFailed: _fixed("backup.restore_failed"),
    BackupDestinationCreated: _fixed("backup_destination.created"),
    BackupDestinationDeleted: _fixed("backup_destination.deleted"),
    BackupScheduleSet: _fixed("backup_schedule.set"),
    WebhookEndpointCreated: _fixed("webhook.created"),
    WebhookEndpointChanged: _fixed("webhook.updated"),
    WebhookEndpointEnabled: _fixed("webhook.enabled"),
    WebhookEndpointDisabled: _fixed("webhook.disabled"),
    WebhookSecretRotated: _fixed("webhook.secret_rotated"),
    WebhookEndpointDeleted: _fixed("webhook.deleted"),
    ApiKeyCreated: _fixed("api_key.created"),
    ApiKeyRevoked: _fixed("api_key.revoked"),
}
"""Event type → its `resource.verb` action; events not listed are not audited."""

RESOURCE_TYPES: Final = {
    "instance": "instance",
    "server": "server",
    "domain": "domain",
    "mcp": "mcp",
    "backup": "backup",
    "backup_destination": "backupdest",
    "backup_schedule": "backupschedule",
    "webhook": "webhook",
    "api_key": "apikey",
}
"""A resource type as the filters name it → as entries store it (their stream's prefix)."""


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    action: str
    resource_type: str
    resource_id: str
    resource_name: str | None
    user_id: str
    user_name: str
    ip_address: str | None
    user_agent: str | None
    before_state: dict[str, Any] | None
    after_state: dict[str, Any] | None
    created_at: datetime
    event_type: str
    position: int
    correlation_id: str


class _AuditRow(AuditEntry, frozen=True, kw_only=True):
    stream_id: str


def entry(action: str, before: Row | None, after: Row | None, env: Envelope) -> _AuditRow:
    subject: Any = after if after is not None else before
    old, new = changes(before, after)
    meta, recorded = env.meta, env.recorded
    return _AuditRow(
        id=str(recorded.event_id),
        org_id=meta.org_id,
        action=action,
        resource_type=recorded.stream_id.split("-", 1)[0],
        resource_id=subject.id,
        resource_name=getattr(subject, "name", None),  # a backup has no name
        user_id=meta.actor.id,
        user_name=meta.actor.name,
        ip_address=meta.client_ip,
        user_agent=meta.user_agent,
        before_state=old,
        after_state=new,
        created_at=recorded.recorded_at,
        event_type=recorded.event_type,
        position=recorded.position,
        correlation_id=meta.correlation_id,
        stream_id=recorded.stream_id,
    )


def tool_call_entry(env: Envelope) -> _AuditRow:
    """An MCP tool call (issue 18): about its instance when it had one, else its session."""
    call: McpToolCalled = env.event  # type: ignore[assignment]
    meta, recorded = env.meta, env.recorded
    return _AuditRow(
        id=str(recorded.event_id),
        org_id=meta.org_id,
        action="mcp.tool_called",
        resource_type="instance" if call.instance_id else "mcp",
        resource_id=call.instance_id or call.session_id,
        resource_name=call.instance_slug,
        user_id=meta.actor.id,
        user_name=meta.actor.name,
        ip_address=meta.client_ip,
        user_agent=meta.user_agent,
        before_state=None,
        after_state={
            "tool": call.tool,
            "arguments": call.arguments,
            "outcome": call.outcome,
            "message": call.message,
        },
        created_at=recorded.recorded_at,
        event_type=recorded.event_type,
        position=recorded.position,
        correlation_id=meta.correlation_id,
        stream_id=recorded.stream_id,
    )


_INSERT: Final = (
    b"INSERT INTO audit_log SELECT * FROM json_populate_recordset(NULL::audit_log, %s::json)"
    b" ON CONFLICT (position) DO NOTHING"
)
# A rebuild applies each event once into an empty table: COPY, in _AuditRow's field order.
_COPY: Final = (
    "COPY audit_log ("
    + ", ".join(field.name for field in msgspec.structs.fields(_AuditRow))
    + ") FROM STDIN"
).encode()
_STATES: Final = slice(10, 12)  # before_state, after_state: JSON text for jsonb


async def _insert(conn: AsyncConnection[Any], rows: list[_AuditRow]) -> None:
    await conn.execute(_INSERT, (as_json(rows),))


async def _copy(conn: AsyncConnection[Any], rows: list[_AuditRow]) -> None:
    async with conn.cursor() as cur, cur.copy(_COPY) as copy:
        for row in rows:
            values = list(msgspec.structs.astuple(row))
            values[_STATES] = [None if v is None else as_json(v) for v in values[_STATES]]
            await copy.write_row(values)


class SubjectRows:
    """The audit projection's fold of each resource stream, stored as MessagePack per stream."""

    def __init__(self, folders: Mapping[str, Folder[Any]]) -> None:
        self._decoders = {
            kind: msgspec.msgpack.Decoder(folder.row_type) for kind, folder in folders.items()
        }
        self._encoder = msgspec.msgpack.Encoder()

    async def load(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> dict[str, Any]:
        # Never prepared, as TableRows.load and for the same reason.
        cur = await conn.execute(
            "SELECT stream_id, state FROM audit_subjects WHERE stream_id = ANY(%b)",
            (list(stream_ids),),
            prepare=False,
        )
        return {
            stream_id: self._decoders[stream_id.split("-", 1)[0]].decode(state)
            for stream_id, state in await cur.fetchall()
        }

    async def save(self, conn: AsyncConnection[Any], rows: Mapping[str, Any]) -> None:
        kept = [(sid, row) for sid, row in rows.items() if row is not None]
        if kept:
            await conn.execute(
                "INSERT INTO audit_subjects (stream_id, state)"
                " SELECT * FROM unnest(%b::text[], %b::bytea[])"
                " ON CONFLICT (stream_id) DO UPDATE SET state = EXCLUDED.state",
                ([sid for sid, _ in kept], [self._encoder.encode(row) for _, row in kept]),
            )
        await self.forget(conn, [sid for sid, row in rows.items() if row is None])

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        if stream_ids:
            await conn.execute(
                "DELETE FROM audit_subjects WHERE stream_id = ANY(%b)", (list(stream_ids),)
            )


class AuditProjection:
    name = "audit"
    tables = ("audit_log", "audit_subjects")
    stream_types = tuple(RESOURCE_TYPES.values())

    def __init__(self, registry: EventRegistry) -> None:
        self._registry = registry
        self._folders: dict[str, Folder[Any]] = {
            "instance": INSTANCES,
            "server": SERVERS,
            "domain": DOMAINS,
            "backup": BACKUPS,
            "backupdest": DESTINATIONS,
            "backupschedule": SCHEDULES,
            "webhook": WEBHOOKS,
            "apikey": API_KEYS,
        }
        self._subjects: RowStore[Any] = SubjectRows(self._folders)
        self._actions = {event_type.event_type(): fn for event_type, fn in ACTIONS.items()}
        self._write: Callable[[AsyncConnection[Any], list[_AuditRow]], Awaitable[None]] = _insert

    def buffered(self, capacity: int) -> tuple[AuditProjection, RowBuffer[Any]]:
        """A copy that keeps the subjects' folds in memory between batches (a rebuild's)."""
        buffer = RowBuffer(self._subjects, capacity)
        buffering = copy.copy(self)
        buffering._subjects = buffer
        buffering._write = _copy
        return buffering, buffer

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        rows: list[_AuditRow] = []

        def record(before: Row | None, after: Row | None, env: Envelope) -> None:
            action_of = self._actions.get(env.recorded.event_type)
            if action_of is not None:
                rows.append(entry(action_of(env.event), before, after, env))

        await fold_batch(conn, events, self._folders, self._subjects, self._registry, record)
        tool_calls = McpToolCalled.event_type()
        rows += [
            tool_call_entry(Envelope.decode(self._registry, e))
            for e in events
            if e.event_type == tool_calls
        ]
        if rows:
            await self._write(conn, rows)

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        await self._subjects.forget(conn, stream_ids)
        await conn.execute("DELETE FROM audit_log WHERE stream_id = ANY(%b)", (list(stream_ids),))


_entries: Final = msgspec.json.Decoder(list[AuditEntry])

# Filter field → its condition; an unset field adds nothing.
_CONDITIONS: Final = {
    "resource_type": b"resource_type = %(resource_type)s",
    "resource_id": b"resource_id = %(resource_id)s",
    "action": b"action = %(action)s",
    "user_id": b"user_id = %(user_id)s",
    "start_date": b"created_at >= %(start_date)s",
    "end_date": b"created_at <= %(end_date)s",
}


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Every field narrows the search; dates are inclusive."""

    resource_type: str | None = None
    resource_id: str | None = None
    action: str | None = None
    user_id: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None


async def query_audit(
    conn: Reader, org_id: str, filter: AuditFilter, page: int, per_page: int
) -> tuple[list[AuditEntry], int]:
    """A page (from 1) of the organization's audit entries, newest first, and the total."""
    return await search_audit(conn, org_id, filter, page, per_page)


async def search_audit(
    conn: Reader, org_id: str | None, filter: AuditFilter, page: int, per_page: int
) -> tuple[list[AuditEntry], int]:
    """query_audit, or across every organization when `org_id` is None (operators only)."""
    if page < 1 or per_page < 1:
        raise ValueError("page and per_page start at 1")
    params: dict[str, Any] = msgspec.structs.asdict(filter)
    where = [_CONDITIONS[name] for name, value in params.items() if value is not None]
    if org_id is not None:
        where.append(b"org_id = %(org)s")
    condition = b" WHERE " + b" AND ".join(where) if where else b""
    params |= {"org": org_id, "limit": per_page, "offset": (page - 1) * per_page}
    async with connection(conn) as c:
        cur = await c.execute(
            b"SELECT coalesce(json_agg(a ORDER BY a.created_at DESC, a.position DESC), '[]')"
            b"::text FROM (SELECT * FROM audit_log" + condition + b" ORDER BY created_at DESC,"
            b" position DESC LIMIT %(limit)s OFFSET %(offset)s) a",
            params,
        )
        found = await cur.fetchone()
        cur = await c.execute(b"SELECT count(*) FROM audit_log" + condition, params)
        total = await cur.fetchone()
    entries = _entries.decode(found[0]) if found is not None else []
    return entries, 0 if total is None else int(total[0])
