"""A rebuild's pass over the whole log into its new tables, built for throughput.

Unlike the live Projector it reads big slices of the log, takes only the events of the
projection's stream types from PostgreSQL (`read_of_types`), and, for a projection that
`Buffers`, keeps the folded rows in memory between batches (RowBuffer) so that each row is
written about once instead of once per batch. Each batch still commits with the build's
checkpoint, and no transaction is open while a slice is read. A batch that fails is rolled
back, with the buffer, and applied again one event at a time up to the one at fault, which
raises PoisonEvent (as the Projector does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql

from events.checkpoints import load_checkpoint, save_checkpoint
from events.log_reads import Slice, read_of_types
from events.store import Checkpoint, RecordedEvent
from projections.runtime.buffer import RowBuffer
from projections.runtime.errors import PoisonEvent
from projections.runtime.projection import Buffers, Projection
from projections.runtime.projector import CheckpointMoved

_NO_FLUSH_WAIT: Final = b"SET LOCAL synchronous_commit TO off"
# Rows a rebuild keeps in memory per projection: memory stays bounded however long the log.
ROWS_HELD: Final = 5_000


class Build:
    """Fills the tables found first on `search_path`, its progress kept as `checkpoint`."""

    def __init__(
        self,
        projection: Projection,
        *,
        checkpoint: str,
        search_path: tuple[str, ...],
        batch_size: int,
    ) -> None:
        self._buffer: RowBuffer[Any] | None = None
        if isinstance(projection, Buffers):
            projection, self._buffer = projection.buffered(ROWS_HELD)
        self._projection = projection
        self._name = projection.name
        self._checkpoint = checkpoint
        self._batch_size = batch_size
        self._types = tuple(projection.stream_types)
        self._search_path = sql.SQL("SET LOCAL search_path TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, search_path))
        )

    async def run(self, conn: AsyncConnection[Any], on_batch: Callable[[int], None]) -> None:
        """Apply the log up to what a reader may take now; `on_batch(events)` after each
        batch. Every row is in its table when it returns."""
        at = await load_checkpoint(conn, self._checkpoint)
        while (part := await read_of_types(conn, at, self._batch_size, self._types)).count:
            await self._apply(conn, at, part)
            at = part.end
            on_batch(part.count)
        if self._buffer is not None:
            async with conn.transaction():
                await conn.execute(self._search_path)
                await self._buffer.flush(conn)
            self._buffer.committed()

    async def _apply(self, conn: AsyncConnection[Any], at: Checkpoint, part: Slice) -> None:
        try:
            await self._commit(conn, at, part.end, part.events)
        except (psycopg.OperationalError, CheckpointMoved):
            raise
        except Exception:
            await self._one_by_one(conn, at, part.events)

    async def _one_by_one(
        self, conn: AsyncConnection[Any], at: Checkpoint, events: Sequence[RecordedEvent]
    ) -> None:
        for event in events:
            try:
                await self._commit(conn, at, event.checkpoint, [event])
            except (psycopg.OperationalError, CheckpointMoved):
                raise
            except Exception as e:
                raise PoisonEvent(self._name, event, e) from e
            at = event.checkpoint

    async def _commit(
        self,
        conn: AsyncConnection[Any],
        at: Checkpoint,
        end: Checkpoint,
        events: Sequence[RecordedEvent],
    ) -> None:
        try:
            async with conn.transaction():
                await conn.execute(_NO_FLUSH_WAIT)
                await conn.execute(self._search_path)
                await self._projection.apply(conn, events)
                if self._buffer is not None:
                    await self._buffer.spill(conn)
                if not await save_checkpoint(conn, self._checkpoint, at, end):
                    raise CheckpointMoved(f"checkpoint {self._checkpoint!r} moved during a build")
        except BaseException:
            if self._buffer is not None:
                self._buffer.rolled_back()
            raise
        if self._buffer is not None:
            self._buffer.committed()
