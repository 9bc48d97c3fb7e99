"""Host names held by instances created before host names were reserved: such an instance
holds `<its slug>.<base domain>` for as long as its slug reservation, made under a legacy
slug stream id (events.reservation.legacy_slug_stream), is not released.

No legacy reservation is made any more, so this set only shrinks: reading it outside the
create's retry loop can only make a create skip a name that was freed meanwhile.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from events.store import EventStore

# Legacy ids always have a hyphen after `slug-`; events.reservation.slug_stream ids never do.
# A release of a legacy reservation is appended to the new stream, hence "anywhere" below.
# The 0006 index (events_slug_reservations) answers both sides by slug.
_HELD_SQL: Final = """
SELECT DISTINCT r.data->>'slug' FROM events r
 WHERE r.event_type = 'SlugReserved' AND r.data->>'slug' = ANY(%(labels)s)
   AND r.stream_id LIKE 'slug-%%-%%'
   AND NOT EXISTS (
       SELECT 1 FROM events x
        WHERE x.event_type = 'SlugReleased' AND x.data->>'slug' = r.data->>'slug'
          AND x.data->>'instance_id' = r.data->>'instance_id')
"""


async def legacy_held_labels(store: EventStore, labels: Collection[str]) -> set[str]:
    """Which of `labels` an instance created before host names were reserved holds as the
    first label of its host name (whatever the base domain was then: a label is skipped
    rather than risk a shared host name)."""
    async with store.pool.connection() as conn:
        cur = await conn.execute(_HELD_SQL, {"labels": list(labels)})
        return {str(row[0]) for row in await cur.fetchall()}


_ANY_HELD_SQL: Final = f"SELECT EXISTS ({_HELD_SQL.replace('= ANY(%(labels)s)', 'IS NOT NULL')})"


class LegacyLabels:
    """`legacy_held_labels` for one process, which asks once whether any legacy reservation
    is held at all: the set only shrinks, so when none is, no create needs the query again.
    (Where some still are, every create asks, as before.)"""

    def __init__(self) -> None:
        self._some_held: bool | None = None

    async def held(self, store: EventStore, labels: Collection[str]) -> set[str]:
        if self._some_held is None:
            async with store.pool.connection() as conn:
                cur = await conn.execute(_ANY_HELD_SQL, {})
                row = await cur.fetchone()
            self._some_held = bool(row and row[0])
        return await legacy_held_labels(store, labels) if self._some_held else set()
