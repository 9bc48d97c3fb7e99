"""A write-back cache of folded rows, for a rebuild: rows stay in memory between batches and
reach their table once, instead of being loaded and written again by every batch that
touches their stream.

It starts over an empty table (a rebuild's fresh copy) and is the table's only writer, so a
row it does not hold is in the table only if it was spilled there. At most `capacity` rows
are held: past that, the least recently changed are written out and dropped, so memory does
not grow with the log. A batch's changes are kept apart until its transaction commits
(`committed`); after a rollback (`rolled_back`) the buffer is as the last commit left it,
rows spilled inside the rolled-back transaction included.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from itertools import islice
from typing import Any, Final, Generic

from psycopg import AsyncConnection

from projections.runtime.fold import R, RowStore

# Rows per write: a save is one JSON parameter, which must stay small next to the rows held.
_CHUNK: Final = 2000


class RowBuffer(Generic[R]):
    def __init__(self, store: RowStore[R], capacity: int) -> None:
        self._store = store
        self._capacity = capacity
        # Committed rows (None: deleted), least recently changed first.
        self._held: dict[str, R | None] = {}
        self._unwritten: set[str] = set()
        self._spilled_ever: set[str] = set()  # the only rows the table may have
        self._pending: dict[str, R | None] = {}  # the open transaction's changes
        self._spilled: list[str] = []  # written out in the open transaction

    async def load(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> dict[str, R]:
        found: dict[str, R | None] = {}
        elsewhere: list[str] = []
        for stream_id in stream_ids:
            if stream_id in self._pending:
                found[stream_id] = self._pending[stream_id]
            elif stream_id in self._held:
                found[stream_id] = self._held[stream_id]
            elif stream_id in self._spilled_ever:
                elsewhere.append(stream_id)
        rows = {stream_id: row for stream_id, row in found.items() if row is not None}
        if elsewhere:
            rows.update(await self._store.load(conn, elsewhere))
        return rows

    async def save(
        self,
        conn: AsyncConnection[Any],  # noqa: ARG002 (RowStore's interface; written later)
        rows: Mapping[str, R | None],
    ) -> None:
        self._pending.update(rows)

    async def forget(
        self,
        conn: AsyncConnection[Any],  # noqa: ARG002 (RowStore's interface; written later)
        stream_ids: Collection[str],
    ) -> None:
        self._pending.update(dict.fromkeys(stream_ids))

    async def spill(self, conn: AsyncConnection[Any]) -> None:
        """Inside the batch's transaction: write out the rows past `capacity`."""
        new = sum(1 for stream_id in self._pending if stream_id not in self._held)
        over = len(self._held) + new - self._capacity
        if over <= 0:
            return
        oldest = islice((s for s in self._held if s not in self._pending), over)
        self._spilled = list(oldest)
        await self._write(conn, [s for s in self._spilled if s in self._unwritten])

    def committed(self) -> None:
        for stream_id in self._spilled:
            del self._held[stream_id]
            self._unwritten.discard(stream_id)
            self._spilled_ever.add(stream_id)
        for stream_id, row in self._pending.items():
            self._held.pop(stream_id, None)  # to the end: the most recently changed
            self._held[stream_id] = row
        self._unwritten.update(self._pending)
        self._pending.clear()
        self._spilled.clear()

    def rolled_back(self) -> None:
        self._pending.clear()
        self._spilled.clear()

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        """Write every row not yet in the table (inside a transaction; then `committed`)."""
        await self._write(conn, list(self._unwritten))
        self._spilled = list(self._held)

    async def _write(self, conn: AsyncConnection[Any], stream_ids: list[str]) -> None:
        for first in range(0, len(stream_ids), _CHUNK):
            chunk = stream_ids[first : first + _CHUNK]
            await self._store.save(conn, {stream_id: self._held[stream_id] for stream_id in chunk})
