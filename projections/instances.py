"""The instance read model: its row (the API's Instance object), how events build it, and
its reads: one by id, or a page of a filtered list (keyset, newest first).

The one place that turns instance events into an instance row: the projection, the audit
trail's before/after states and time travel (`instance_as_of`) all fold with INSTANCES.
Every read filters by organization: an instance of another organization does not exist.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec

from events.instance import (
    CHANGEABLE,
    ActionFailed,
    ActionRequested,
    AdminCredentialsRevealed,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    EnvVarsRevealed,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemovalForced,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    McpCredentialsFailed,
    McpCredentialsIssued,
    McpCredentialsRequested,
    McpModelAccess,
    ProvisioningFailed,
    RedeployRequested,
    RemovalAbandoned,
    RemovalFailed,
    RemovalRequested,
)
from events.secrets import Sealed
from projections.health import STORED_SCORE_SQL, StoredScore, score_now
from projections.runtime.cursor import Position, decode_cursor, encode_cursor
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, fetch_text

InstanceStatus = Literal[
    "creating", "running", "stopped", "starting", "stopping", "restarting", "failed", "removing"
]

_DOMAIN_IDS = uuid.UUID("6f7d1c52-8a43-4c1e-9d51-2f0a8e7b9c10")


class DomainView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    domain: str
    is_primary: bool
    is_auto_generated: bool
    dns_status: str
    ssl_status: str
    ssl_expires_at: datetime | None
    dns_provider: str | None
    dns_record_id: str | None
    created_at: datetime
    dns_message: str | None = None  # the resolver's answer to a failed check


class InstanceView(Row, frozen=True, kw_only=True):
    """An instance as the API shows it; `version` is its stream version (the ETag)."""

    id: str
    org_id: str
    name: str
    slug: str
    server_id: str
    project_id: str | None
    template_id: str | None
    branch: str | None
    environment_type: str
    odoo_version: str
    odoo_edition: str
    status: InstanceStatus
    status_message: str | None
    active_color: str | None
    addons_path: str | None
    env_vars: dict[str, Sealed]
    auto_subdomain: str
    domains: list[DomainView]
    http_port: int
    http_port_host: int
    longpolling_port: int
    longpolling_port_host: int
    workers: int
    max_cron_threads: int
    limit_memory_hard: int
    limit_memory_soft: int
    limit_time_cpu: int
    limit_time_real: int
    log_level: str
    mcp_write_enabled: bool
    mcp_model_access: McpModelAccess = McpModelAccess()
    # From the health read model (joined on read), absent from the instances table. The
    # restart fields are Docker's restarts of the serving container, as the health observer
    # saw them (docs/instances.md "Restart counts"); a control restart is an operation.
    health_score: int | None = None
    health_score_grade: str | None = None
    health_score_updated_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_restart_at: datetime | None = None
    restart_count: int | None = None
    enterprise_build_id: str | None = None
    enterprise_deployed_at: datetime | None = None
    enterprise_update_available: bool | None = None
    wkhtmltopdf_status: str | None = None
    wkhtmltopdf_version: str | None = None
    # From the backups read model (joined on read): the latest completed backup's time, and
    # the status of the latest backup asked for (running, completed, failed).
    last_backup_at: datetime | None = None
    last_backup_status: str | None = None
    created_at: datetime
    updated_at: datetime


HEALTH_FIELDS = (
    "health_score",
    "health_score_grade",
    "health_score_updated_at",
    "last_seen_at",
    "last_restart_at",
    "restart_count",
)
BACKUP_FIELDS = ("last_backup_at", "last_backup_status")


def _changed(row: InstanceView, env: Envelope, **changes: Any) -> InstanceView:
    return msgspec.structs.replace(row, updated_at=env.at, **changes)


def created(_: InstanceView | None, e: InstanceCreated, env: Envelope) -> InstanceView:
    auto = DomainView(
        id=str(uuid.uuid5(_DOMAIN_IDS, f"{e.instance_id}/{e.auto_subdomain}")),
        domain=e.auto_subdomain,
        is_primary=True,
        is_auto_generated=True,
        dns_status="pending",
        ssl_status="pending",
        ssl_expires_at=None,
        dns_provider=None,
        dns_record_id=None,
        created_at=e.created_at,
    )
    s = e.settings
    return InstanceView(
        id=e.instance_id,
        org_id=env.meta.org_id,
        name=e.name,
        slug=e.slug,
        server_id=e.server_id,
        project_id=e.project_id,
        template_id=e.template_id,
        branch=e.branch,
        environment_type=e.environment_type,
        odoo_version=e.odoo_version,
        odoo_edition=e.odoo_edition,
        status="creating",
        status_message=None,
        active_color=None,
        addons_path=e.addons_path,
        env_vars=e.env_vars,
        auto_subdomain=e.auto_subdomain,
        domains=[auto],
        http_port=e.http_port,
        http_port_host=e.http_port_host,
        longpolling_port=e.longpolling_port,
        longpolling_port_host=e.longpolling_port_host,
        workers=s.workers,
        max_cron_threads=s.max_cron_threads,
        limit_memory_hard=s.limit_memory_hard,
        limit_memory_soft=s.limit_memory_soft,
        limit_time_cpu=s.limit_time_cpu,
        limit_time_real=s.limit_time_real,
        log_level=s.log_level,
        mcp_write_enabled=e.mcp_write_enabled,
        created_at=e.created_at,
        updated_at=e.created_at,
        version=env.version,
    )


def updated(row: InstanceView | None, e: InstanceUpdated, env: Envelope) -> InstanceView:
    changes = {
        name: value for name in CHANGEABLE if (value := getattr(e, name)) is not msgspec.UNSET
    }
    return msgspec.structs.replace(need(row, env), updated_at=e.updated_at, **changes)


_ACTION_STATUS: dict[str, InstanceStatus] = {
    "start": "starting",
    "stop": "stopping",
    "restart": "restarting",
}


def action_requested(row: InstanceView | None, e: ActionRequested, env: Envelope) -> InstanceView:
    return _changed(need(row, env), env, status=_ACTION_STATUS[e.action], status_message=None)


def provisioned(row: InstanceView | None, e: InstanceProvisioned, env: Envelope) -> InstanceView:
    # The auto subdomain stays dns/ssl "pending": nothing checked its DNS and no certificate
    # was issued for it (issue 16); custom domains carry their own, checked, statuses.
    return _changed(
        need(row, env),
        env,
        status="running",
        status_message=None,
        active_color=e.active_color,
    )


def provisioning_failed(
    row: InstanceView | None, e: ProvisioningFailed, env: Envelope
) -> InstanceView:
    message = f"provisioning failed at step {e.step}: {e.message}"
    return _changed(need(row, env), env, status="failed", status_message=message)


def started(row: InstanceView | None, _: InstanceStarted, env: Envelope) -> InstanceView:
    return _changed(need(row, env), env, status="running", status_message=None)


def restarted(row: InstanceView | None, _: InstanceRestarted, env: Envelope) -> InstanceView:
    return _changed(need(row, env), env, status="running", status_message=None)


def stopped(row: InstanceView | None, _: InstanceStopped, env: Envelope) -> InstanceView:
    return _changed(need(row, env), env, status="stopped", status_message=None)


def action_failed(row: InstanceView | None, e: ActionFailed, env: Envelope) -> InstanceView:
    message = f"{e.action} failed at step {e.step}: {e.message}"
    current = need(row, env)
    if e.action == "redeploy":
        # The route moves only once the new colour is ready: the old one still serves.
        serving = f"{message}; {current.active_color} still serves"
        return _changed(current, env, status_message=serving)
    return _changed(current, env, status="failed", status_message=message)


def redeploy_requested(
    row: InstanceView | None, e: RedeployRequested, env: Envelope
) -> InstanceView:
    return _changed(need(row, env), env, status_message=f"redeploying to {e.target_color}")


def redeployed(row: InstanceView | None, e: InstanceRedeployed, env: Envelope) -> InstanceView:
    return _changed(need(row, env), env, status_message=None, active_color=e.active_color)


def removal_requested(row: InstanceView | None, _: RemovalRequested, env: Envelope) -> InstanceView:
    return _changed(need(row, env), env, status="removing", status_message=None)


def removal_failed(row: InstanceView | None, e: RemovalFailed, env: Envelope) -> InstanceView:
    message = f"removal failed at step {e.step}: {e.message}; it will be retried"
    return _changed(need(row, env), env, status="removing", status_message=message)


def removal_abandoned(row: InstanceView | None, e: RemovalAbandoned, env: Envelope) -> InstanceView:
    message = (
        f"removal failed at step {e.step}: {e.message}; retries used up: DELETE tries again,"
        " DELETE ?force=true records it removed"
    )
    return _changed(need(row, env), env, status="failed", status_message=message)


def removed(
    row: InstanceView | None, _: InstanceRemoved | InstanceRemovalForced, env: Envelope
) -> None:
    need(row, env)


def unchanged(row: InstanceView | None, _: object, env: Envelope) -> InstanceView:
    """An event that changes nothing shown, listed so the audit trail sees it (fold.py)."""
    return need(row, env)


def rotation_failed(
    row: InstanceView | None, e: AdminPasswordRotationFailed, env: Envelope
) -> InstanceView:
    message = (
        f"admin password rotation failed at step {e.step}: {e.message};"
        " the previous password still holds"
    )
    return _changed(need(row, env), env, status_message=message)


INSTANCES: Folder[InstanceView] = Folder(
    "instance",
    InstanceView,
    {
        InstanceCreated: created,
        InstanceUpdated: updated,
        ActionRequested: action_requested,
        InstanceProvisioned: provisioned,
        ProvisioningFailed: provisioning_failed,
        InstanceStarted: started,
        InstanceRestarted: restarted,
        InstanceStopped: stopped,
        ActionFailed: action_failed,
        RedeployRequested: redeploy_requested,
        InstanceRedeployed: redeployed,
        RemovalRequested: removal_requested,
        RemovalFailed: removal_failed,
        RemovalAbandoned: removal_abandoned,
        InstanceRemoved: removed,
        InstanceRemovalForced: removed,
        AdminCredentialsRevealed: unchanged,
        EnvVarsRevealed: unchanged,
        AdminPasswordRotationRequested: unchanged,
        AdminPasswordRotationFailed: rotation_failed,
        McpCredentialsRequested: unchanged,
        McpCredentialsIssued: unchanged,
        McpCredentialsFailed: unchanged,
    },
)


# The instance's domains: its auto subdomain (primary until a custom domain was made primary;
# from its domain row once recorded, else the row's pending/pending entry), then its custom
# domains from their read model (projections/domains.py), oldest first, with
# sslStatus evaluated at the time of reading (`expired` once the date passed).
_PRIMARY: Final = (
    b"(SELECT max(p.primary_since) FROM domains p WHERE p.instance_id = i.id"
    b" AND p.org_id = i.org_id)"
)
_DOMAINS: Final = (
    b"(SELECT coalesce(jsonb_agg(x.v ORDER BY x.ord, x.at, x.v->>'id'), '[]'::jsonb) FROM ("
    b" SELECT 0 AS ord, now() AS at, a.v || jsonb_build_object('is_primary', "
    + _PRIMARY
    + b" IS NULL) AS v FROM jsonb_array_elements(i.domains) AS a(v) WHERE NOT EXISTS"
    b" (SELECT 1 FROM domains r WHERE r.id = a.v->>'id' AND r.org_id = i.org_id)"
    b" UNION ALL SELECT CASE WHEN d.is_auto_generated THEN 0 ELSE 1 END, d.created_at,"
    b" jsonb_build_object('id', d.id, 'domain', d.name, 'is_primary', coalesce("
    b"d.primary_since = " + _PRIMARY + b", d.is_auto_generated AND " + _PRIMARY + b" IS NULL,"
    b" false), 'is_auto_generated', d.is_auto_generated, 'dns_status', d.dns_status, 'dns_message',"
    b" d.dns_message, 'ssl_status', CASE WHEN d.ssl_expires_at <= now() THEN 'expired'"
    b" WHEN d.ssl_message IS NOT NULL THEN 'error' WHEN d.ssl_expires_at IS NOT NULL"
    b" THEN 'active' ELSE 'pending' END, 'ssl_expires_at', d.ssl_expires_at,"
    b" 'dns_provider', NULL, 'dns_record_id', NULL, 'created_at', d.created_at)"
    b" FROM domains d WHERE d.instance_id = i.id AND d.org_id = i.org_id) x)"
)
# The instance row with lastSeenAt and the restart fields from the health read model, and the
# stored score that `_scored` evaluates at the time of reading (as /health-score does), as one
# JSON object.
_ROW: Final = (
    b"jsonb_build_object('instance', to_jsonb(i) || jsonb_build_object('last_seen_at',"
    b" h.last_seen_at, 'last_restart_at', h.last_restart_at, 'restart_count', h.restart_count,"
    b" 'last_backup_at', (SELECT max(b.completed_at) FROM backups b WHERE b.instance_id = i.id"
    b" AND b.org_id = i.org_id AND b.status IN ('completed', 'deleting')),"
    b" 'last_backup_status', (SELECT b.status FROM backups b WHERE b.instance_id = i.id"
    b" AND b.org_id = i.org_id AND b.status IN ('running', 'completed', 'failed')"
    b" ORDER BY b.requested_at DESC LIMIT 1), 'domains', " + _DOMAINS + b"),"
    b" 'score', " + STORED_SCORE_SQL + b")"
)
_HEALTH: Final = b" LEFT JOIN health h ON h.instance_id = i.id AND h.org_id = i.org_id"

_GET: Final = (
    b"SELECT ("
    + _ROW
    + b")::text FROM instances i"
    + _HEALTH
    + b" WHERE i.org_id = %(org)s AND i.id = %(id)s"
)


class _Row(msgspec.Struct, frozen=True):
    instance: InstanceView
    score: StoredScore | None


_instance: Final = msgspec.json.Decoder(_Row)
_page: Final = msgspec.json.Decoder(list[_Row])


def _scored(row: _Row, now: datetime) -> InstanceView:
    score = score_now(row.score, now)
    if score is None or row.score is None:
        return row.instance
    return msgspec.structs.replace(
        row.instance,
        health_score=score.score,
        health_score_grade=score.grade,
        health_score_updated_at=row.score.score_updated_at,
    )


async def get_instance(
    conn: Reader, org_id: str, instance_id: str, *, now: datetime | None = None
) -> InstanceView | None:
    """`now` is when the health score is evaluated (default: the current time)."""
    found = await fetch_text(conn, _GET, {"org": org_id, "id": instance_id})
    return None if found is None else _scored(_instance.decode(found), now or datetime.now(UTC))


def _list_query(*, by_server: bool, by_status: bool, after: bool) -> bytes:
    """Each combination of filters is a fixed text that one of the list indexes serves."""
    where = [b"i.org_id = %(org)s"]
    if by_server:
        where.append(b"i.server_id = %(server)s")
    if by_status:
        where.append(b"i.status = %(status)s")
    if after:
        where.append(b"(i.created_at, i.id) < (%(at)s, %(id)s)")
    page = (
        b"SELECT * FROM instances i WHERE "
        + b" AND ".join(where)
        + b" ORDER BY i.created_at DESC, i.id DESC LIMIT %(limit)s"
    )
    return (
        b"SELECT coalesce(jsonb_agg(" + _ROW + b" ORDER BY i.created_at DESC, i.id DESC),"
        b" '[]')::text FROM (" + page + b") i" + _HEALTH
    )


async def list_instances(
    conn: Reader,
    org_id: str,
    *,
    server_id: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
    now: datetime | None = None,
) -> tuple[list[InstanceView], str | None]:
    """A page of at most `limit` instances and the cursor of the next page (None at the
    end), health scores evaluated at `now` (default: the current time). Raises InvalidCursor
    for a cursor this function did not return."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    after = None if cursor is None else decode_cursor(cursor)
    query = _list_query(
        by_server=server_id is not None, by_status=status is not None, after=after is not None
    )
    params = {
        "org": org_id,
        "server": server_id,
        "status": status,
        "at": after.created_at if after else None,
        "id": after.id if after else None,
        "limit": limit + 1,
    }
    at = now or datetime.now(UTC)
    found = [
        _scored(row, at) for row in _page.decode(await fetch_text(conn, query, params) or "[]")
    ]
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], encode_cursor(Position(last.created_at, last.id))


async def with_health(
    conn: Reader, view: InstanceView, *, now: datetime | None = None
) -> InstanceView:
    """`view`, folded from its stream, with the health fields a read shows (health score,
    lastSeenAt, restart count and time): no instance event carries them, they come from the
    health read model."""
    stored = await get_instance(conn, view.org_id, view.id, now=now)
    if stored is None:
        return view
    joined = (*HEALTH_FIELDS, *BACKUP_FIELDS)
    return msgspec.structs.replace(view, **{name: getattr(stored, name) for name in joined})
