"""How many servers one organization may register (ODOOFLEET_MAX_SERVERS_PER_ORG): each one
costs a validation, a connection kept open and a health visit per cycle (issue 13, item 5)."""

from __future__ import annotations

from typing import Final

from api.errors import FieldError, problem
from projections.runtime.reader import Reader, connection

_COUNT: Final = b"SELECT count(*) FROM servers WHERE org_id = %s"


async def refuse_over_quota(reader: Reader, org_id: str, limit: int) -> None:
    """A 409 problem naming the limit when the organization has `limit` servers already.

    Counted on the read model: registrations racing each other may pass it by a few, which
    is no harm for a bound against abuse.
    """
    async with connection(reader) as conn:
        cur = await conn.execute(_COUNT, (org_id,))
        row = await cur.fetchone()
    count = int(row[0]) if row else 0
    if count >= limit:
        raise problem(
            409,
            "server-quota-reached",
            f"the organization has {count} servers; the limit is {limit} "
            "(ODOOFLEET_MAX_SERVERS_PER_ORG)",
            errors=[FieldError("servers", f"at most {limit} per organization")],
            limit=limit,
        )
