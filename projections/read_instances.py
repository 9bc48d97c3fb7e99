"""Reading instances: one by id, or a page of a filtered list (keyset, newest first).

Every read filters by organization: an instance of another organization does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from projections.cursor import Position, decode_cursor, encode_cursor
from projections.instances import HEALTH_FIELDS, InstanceView
from projections.read_health_score import STORED_SCORE_SQL, StoredScore, score_now
from projections.reader import Reader, fetch_text

# The instance row with lastSeenAt and the restart fields from the health read model, and the
# stored score that `_scored` evaluates at the time of reading (as /health-score does), as one
# JSON object.
_ROW: Final = (
    b"jsonb_build_object('instance', to_jsonb(i) || jsonb_build_object('last_seen_at',"
    b" h.last_seen_at, 'last_restart_at', h.last_restart_at, 'restart_count', h.restart_count),"
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
    return msgspec.structs.replace(view, **{name: getattr(stored, name) for name in HEALTH_FIELDS})
