"""Named checkpoints in the ordered log (relay, projections), saved by compare-and-set."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from events.store import START, Checkpoint


async def load_checkpoint(conn: AsyncConnection[Any], name: str) -> Checkpoint:
    await conn.execute("INSERT INTO checkpoints (name) VALUES (%s) ON CONFLICT DO NOTHING", (name,))
    cur = await conn.execute(
        "SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = %s", (name,)
    )
    row = await cur.fetchone()
    return START if row is None else Checkpoint(int(row[0]), int(row[1]))


async def save_checkpoint(
    conn: AsyncConnection[Any], name: str, previous: Checkpoint, new: Checkpoint
) -> bool:
    """Move `name` from `previous` to `new`; False if someone else moved it meanwhile
    (a stale leader must never overwrite a newer checkpoint)."""
    cur = await conn.execute(
        "UPDATE checkpoints SET tx_id = %s::text::xid8, position = %s, updated_at = now()"
        " WHERE name = %s AND tx_id = %s::text::xid8 AND position = %s",
        (str(new.tx_id), new.position, name, str(previous.tx_id), previous.position),
    )
    return cur.rowcount == 1
