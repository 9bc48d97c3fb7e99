"""Searching the audit trail with the filters of `GET /api/audit-logs` and `odoofleet audit`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from projections.audit import AuditEntry
from projections.reader import Reader, connection

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
