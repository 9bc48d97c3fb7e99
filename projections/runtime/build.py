"""A rebuild's pass over the whole log into its new tables, built for throughput.

Unlike the live Projector it reads big slices of the log, takes only the events of the
projection's stream types from PostgreSQL (`read_of_types`), and, for a projection that
`Buffers`, keeps the folded rows in memory between batches (RowBuffer) so that each row is
written about once instead of once per batch. Each batch still commits with the build's
checkpoint, and no transaction is open while a slice is read. A batch that fails is rolled
back, with the buffer, and applied again one event at a time up to the one at fault, which
raises PoisonEvent (as the Projector does).

A projection that `Buffers` is built from the start in stream order instead, where stream ids
sort byte by byte: every row it writes derives from one stream (Projection), so folding each
stream's events in one go, up to the log's head as of the start, builds the same rows as the
log order does. Each stream is then folded once and its row written once, however many
streams the log interleaves; in log order, a log that touches more streams than the buffer
holds had each batch load and write most of its rows again (bench/README.md, Projections).
The checkpoint moves to that head when the last rows are written, in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql

from events.checkpoints import load_checkpoint, save_checkpoint
from events.log_reads import (
    newest,
    read_kind_by_stream,
    read_of_types,
    stream_ids_sort_bytewise,
)
from events.store import START, Checkpoint, RecordedEvent
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

    async def run(
        self,
        conn: AsyncConnection[Any],
        reader: AsyncConnection[Any],
        on_batch: Callable[[int], None],
    ) -> None:
        """Apply the log up to what a reader may take now; `on_batch(events)` after each
        batch, with the events it read. Every row is in its table when it returns. A build
        in stream order reads the next chunk on `reader` (another connection) while the
        current one is applied."""
        at = await load_checkpoint(conn, self._checkpoint)
        if self._buffer is not None and at == START and await stream_ids_sort_bytewise(conn):
            await self._run_by_stream(conn, reader, on_batch)
            return
        while (part := await read_of_types(conn, at, self._batch_size, self._types)).count:
            await self._apply(conn, at, part.end, part.events)
            at = part.end
            on_batch(part.count)
        await self._flush(conn, at, at)

    async def _run_by_stream(
        self,
        conn: AsyncConnection[Any],
        reader: AsyncConnection[Any],
        on_batch: Callable[[int], None],
    ) -> None:
        head = await newest(conn, 1)
        if not head:
            return
        upto = head[-1].checkpoint

        def read(kind: str, after: tuple[str, int]) -> asyncio.Task[list[RecordedEvent]]:
            return asyncio.ensure_future(
                read_kind_by_stream(reader, kind, after, upto, self._batch_size)
            )

        for kind in self._types:
            chunk = read(kind, ("", 0))
            try:
                while events := await chunk:
                    chunk = read(kind, (events[-1].stream_id, events[-1].version))
                    # The checkpoint stays at the start until the last rows are written.
                    await self._apply(conn, START, START, events)
                    on_batch(len(events))
            finally:
                chunk.cancel()  # a read ahead that a failure left unwanted
                with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                    await chunk
        await self._flush(conn, START, upto)

    async def _flush(self, conn: AsyncConnection[Any], at: Checkpoint, end: Checkpoint) -> None:
        """Write the rows still held and move the checkpoint from `at` to `end`."""
        if self._buffer is None:
            return
        async with conn.transaction():
            await conn.execute(self._search_path)
            await self._buffer.flush(conn)
            if not await save_checkpoint(conn, self._checkpoint, at, end):
                raise CheckpointMoved(f"checkpoint {self._checkpoint!r} moved during a build")
        self._buffer.committed()

    async def _apply(
        self,
        conn: AsyncConnection[Any],
        at: Checkpoint,
        end: Checkpoint,
        events: Sequence[RecordedEvent],
    ) -> None:
        try:
            await self._commit(conn, at, end, events)
        except (psycopg.OperationalError, CheckpointMoved):
            raise
        except Exception:
            await self._one_by_one(conn, at, end, events)

    async def _one_by_one(
        self,
        conn: AsyncConnection[Any],
        at: Checkpoint,
        end: Checkpoint,
        events: Sequence[RecordedEvent],
    ) -> None:
        """Each event in a transaction of its own, the checkpoint moving with it unless the
        batch was not to move it (`at == end`)."""
        for event in events:
            to = at if at == end else event.checkpoint
            try:
                await self._commit(conn, at, to, [event])
            except (psycopg.OperationalError, CheckpointMoved):
                raise
            except Exception as e:
                raise PoisonEvent(self._name, event, e) from e
            at = to

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
