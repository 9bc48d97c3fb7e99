"""The audit trail: who changed what, when, from where, with before/after (secrets masked)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from litestar import get
from litestar.params import FromQuery, QueryParameter

from api import present
from api.auth import needs
from api.errors import FieldError, InvalidRequest
from api.services import Deps
from api.web import AuthRequest, MinPosition, problems
from api.wire_reads import AuditPage
from projections.audit import RESOURCE_TYPES, AuditFilter, query_audit

Action = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[a-z]+\.[a-z_]+$",
        max_length=64,
        description="e.g. instance.created, instance.credentials_revealed",
    ),
]
Identifier = Annotated[str | None, QueryParameter(max_length=200)]
Moment = Annotated[datetime | None, QueryParameter(description="RFC 3339, inclusive")]
Page = Annotated[int, QueryParameter(ge=1, le=1_000_000)]
PerPage = Annotated[int, QueryParameter(ge=1, le=100)]
# The names of projections.audit.RESOURCE_TYPES (entries store their stream's prefix),
# spelled out for the OpenAPI document.
ResourceType = Literal[
    "instance",
    "server",
    "domain",
    "mcp",
    "backup",
    "backup_destination",
    "backup_schedule",
    "webhook",
    "api_key",
]


@get(
    "/audit-logs",
    operation_id="listAuditLogs",
    summary="Search the audit trail",
    opt=needs("view:audit"),
    responses=problems(400, 401, 403, 503),
    tags=["audit"],
)
async def audit_logs(
    request: AuthRequest,
    services: Deps,
    resource_type: FromQuery[ResourceType | None] = None,
    resource_id: Identifier = None,
    action: Action = None,
    user_id: Identifier = None,
    start_date: Moment = None,
    end_date: Moment = None,
    page: Page = 1,
    per_page: PerPage = 50,
    min_position: MinPosition = None,
) -> AuditPage:
    """The organization's audit trail, newest first, a page at a time."""
    principal = request.user
    start, end = _utc(start_date), _utc(end_date)
    if start is not None and end is not None and start > end:
        raise InvalidRequest(FieldError("end_date", "is before start_date"))
    await services.reads.before_read(principal, min_position, ("audit",))
    found, total = await query_audit(
        services.pool,
        principal.org_id,
        AuditFilter(
            resource_type=RESOURCE_TYPES[resource_type] if resource_type else None,
            resource_id=resource_id,
            action=action,
            user_id=user_id,
            start_date=start,
            end_date=end,
        ),
        page,
        per_page,
    )
    items = [present.audit_item(entry) for entry in found]
    return AuditPage(items=items, page=page, per_page=per_page, total=total)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
