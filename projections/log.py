"""Reads of the event log that projections need beyond `read_all_on`: by stream, capped at
a checkpoint, so a refold sees exactly what the live projector has seen."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from events.store import RECORDED_COLUMNS, Checkpoint, RecordedEvent

_BETWEEN_VERSIONS: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events"
    " WHERE stream_id = %s AND version > %s AND version < %s ORDER BY version"
).encode()

_STREAMS_UP_TO: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events WHERE stream_id = ANY(%s)"
    " AND (tx_id, position) <= (%s::text::xid8, %s) ORDER BY events.tx_id, events.position"
).encode()


async def events_between(
    conn: AsyncConnection[Any], stream_id: str, after_version: int, before_version: int
) -> list[RecordedEvent]:
    """The events of one stream strictly between two versions, in version order."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_BETWEEN_VERSIONS, (stream_id, after_version, before_version))
    return [RecordedEvent(*row) for row in await cur.fetchall()]


async def streams_up_to(
    conn: AsyncConnection[Any], stream_ids: Collection[str], upto: Checkpoint
) -> list[RecordedEvent]:
    """Every event of `stream_ids` at or before `upto`, in log order."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_STREAMS_UP_TO, (list(stream_ids), str(upto.tx_id), upto.position))
    return [RecordedEvent(*row) for row in await cur.fetchall()]
