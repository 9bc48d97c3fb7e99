"""Read-your-writes: wait until projections have applied a given event (DESIGN.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool

from projections.catalog import READS

# How many of the named projections reflect everything up to the event at %(position)s: their
# checkpoint is at or past the event's place in the log ((tx_id, position) is the order
# projectors apply events in), or no event of a stream they read lies between the two (a
# projection saves its checkpoint past other streams' events only every so often).
_REACHED: Final = (
    b"SELECT count(*) FROM events e, checkpoints c,"
    b" unnest(%(names)s::text[], %(kinds)s::text[]) AS w(name, kinds)"
    b" WHERE e.position = %(position)s AND c.name = w.name"
    b" AND ((c.tx_id, c.position) >= (e.tx_id, e.position) OR NOT EXISTS ("
    b"  SELECT 1 FROM events x WHERE x.tx_id BETWEEN c.tx_id AND e.tx_id"
    b"  AND (x.tx_id, x.position) > (c.tx_id, c.position)"
    b"  AND (x.tx_id, x.position) <= (e.tx_id, e.position)"
    b"  AND split_part(x.stream_id, '-', 1) = ANY(string_to_array(w.kinds, ','))))"
)
_FIRST_STEP: Final = 0.002
_LONGEST_STEP: Final = 0.025


async def wait_for_position(
    pool: AsyncConnectionPool[Any],
    position: int,
    timeout: float = 2.0,  # noqa: ASYNC109 - the API contract names it so
    projections: tuple[str, ...] = ("instances",),
) -> bool:
    """True once every named projection reflects the log up to the event at global
    `position` (applied it and all before it, or reads none of the events it has yet to
    apply up to there); False after `timeout` seconds. Polls in steps of 2 ms growing to
    25 ms, borrowing a pooled connection only for each check."""
    deadline = time.monotonic() + timeout
    step = _FIRST_STEP
    params = {
        "position": position,
        "names": list(projections),
        "kinds": [",".join(READS[name]) for name in projections],
    }
    while True:
        async with pool.connection() as conn:
            cur = await conn.execute(_REACHED, params)
            row = await cur.fetchone()
        if row is not None and row[0] == len(projections):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(step, left))
        step = min(step * 2, _LONGEST_STEP)
