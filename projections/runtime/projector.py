"""Applying the log to one projection, batch by batch: the rows and the checkpoint commit in
ONE transaction, so every event takes effect exactly once even if the process dies mid-batch.

Each batch locks the projection's checkpoint row before it writes. That row is the
projection's write mutex: two processes that both believe they lead (one of them stale) take
turns, and each applies the log from the checkpoint the other left. The checkpoint is still
saved by compare-and-set (DESIGN.md, "Projections").

The next events are first read outside any transaction, from where this projector has read
to: a poll that finds nothing costs one query, and a transaction id (which hides every newer
event from every log reader until it ends) is held only while writing. Events of streams the
projection does not read have no effect on it, so a batch of only those writes nothing; the
checkpoint moves past them with the next batch that writes, or on its own after
`save_every` seconds. What was read outside is applied only if the locked checkpoint is still
where this projector last saved it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, sql

from events.checkpoints import save_checkpoint
from events.store import Checkpoint, RecordedEvent, read_all_on
from projections.runtime.errors import PoisonEvent
from projections.runtime.projection import Projection
from projections.runtime.tail import LogTail

# Read models are derived data, and their rows commit with their checkpoint: a crash can
# lose the last few of these commits only together, and the projector applies those events
# again. So a batch need not wait for its WAL flush: the lock that opens it says so
# (set_config(..., true) is SET LOCAL), in the same round trip.
_LOCK: Final = b"SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = %s FOR UPDATE"
_LOCK_NO_FLUSH_WAIT: Final = (
    b"SELECT tx_id::text::bigint, position, set_config('synchronous_commit', 'off', true)"
    b" FROM checkpoints WHERE name = %s FOR UPDATE"
)
_CREATE: Final = b"INSERT INTO checkpoints (name) VALUES (%s) ON CONFLICT DO NOTHING"


class CheckpointMoved(RuntimeError):
    """The checkpoint changed under a held row lock: a bug, never a normal race."""


async def lock_checkpoint(
    conn: AsyncConnection[Any], name: str, *, no_flush_wait: bool = False
) -> Checkpoint:
    """The checkpoint of `name`, its row locked until the transaction ends; with
    `no_flush_wait`, the transaction's commit will not wait for its WAL flush."""
    for _ in range(2):
        cur = await conn.execute(_LOCK_NO_FLUSH_WAIT if no_flush_wait else _LOCK, (name,))
        row = await cur.fetchone()
        if row is not None:
            return Checkpoint(int(row[0]), int(row[1]))
        await conn.execute(_CREATE, (name,))
    raise CheckpointMoved(f"checkpoint {name!r} vanished while being created")


class Projector:
    """Moves one projection along the log. `checkpoint` and `search_path` let a rebuild run
    the same projection into other tables (its build schema first on the search path)."""

    def __init__(
        self,
        projection: Projection,
        *,
        checkpoint: str | None = None,
        search_path: tuple[str, ...] = (),
        batch_size: int = 500,
        save_every: float = 0.25,
        tail: LogTail | None = None,
    ) -> None:
        self.projection = projection
        self._tail = tail
        self.checkpoint = checkpoint or projection.name
        self.batch_size = batch_size
        self._save_every = save_every
        self._types = tuple(projection.stream_types)
        self._streams = tuple(f"{kind}-" for kind in self._types)
        # The checkpoint as this projector last saved or saw it, and how far it has read;
        # the events between the two have no effect on the projection.
        self._saved: Checkpoint | None = None
        self._read: Checkpoint | None = None
        self._saved_at = time.monotonic()
        self._search_path = (
            sql.SQL("SET LOCAL search_path TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, search_path))
            )
            if search_path
            else None
        )

    def forget_position(self) -> None:
        """Start again from the stored checkpoint (after an enclosing transaction that ran
        steps was rolled back)."""
        self._saved = self._read = None

    def save_due_in(self) -> float | None:
        """Seconds until the read position is due to be saved; None if it is saved."""
        if self._read == self._saved:
            return None
        return max(0.0, self._saved_at + self._save_every - time.monotonic())

    async def step(
        self, conn: AsyncConnection[Any], since: float | None = None
    ) -> Sequence[RecordedEvent]:
        """Apply the next batch and return it (empty when caught up). With a tail, the batch
        may be read by another projector's read sent at `since` (time.monotonic) or later.

        If the batch fails, its events are applied one at a time up to the one at fault,
        which raises PoisonEvent: what precedes a poison event still takes effect.
        """
        try:
            return await self._batch(conn, self.batch_size, since)
        except (psycopg.OperationalError, PoisonEvent):
            raise
        except Exception:
            return await self._one_by_one(conn)

    async def save(self, conn: AsyncConnection[Any]) -> None:
        """Store the read position if it is past the checkpoint (events without effect)."""
        if self._read is None or self._read == self._saved:
            return
        async with conn.transaction():
            start = await lock_checkpoint(conn, self.checkpoint, no_flush_wait=True)
            if start == self._saved:
                await save_checkpoint(conn, self.checkpoint, start, self._read)
        # If another projector moved the checkpoint, it wins: read from it next time.
        self._moved(self._read if start == self._saved else None)

    async def _one_by_one(self, conn: AsyncConnection[Any]) -> Sequence[RecordedEvent]:
        applied: list[RecordedEvent] = []
        while len(applied) < self.batch_size:
            one = await self._batch(conn, 1)
            if not one:
                break
            applied.extend(one)
        return applied

    async def _batch(
        self, conn: AsyncConnection[Any], limit: int, since: float | None = None
    ) -> Sequence[RecordedEvent]:
        ahead: Sequence[RecordedEvent] = ()
        if self._read is not None:
            ahead = await self._ahead(conn, self._read, limit, since)
            if not any(e.stream_id.startswith(self._streams) for e in ahead):
                if ahead:
                    self._read = ahead[-1].checkpoint
                due = self.save_due_in()
                if due is not None and due <= 0:
                    await self.save(conn)
                return ahead
        async with conn.transaction():
            if self._search_path is not None:
                await conn.execute(self._search_path)
            start = await lock_checkpoint(conn, self.checkpoint, no_flush_wait=True)
            fresh = not ahead or start != self._saved
            events = await read_all_on(conn, start, limit, self._types) if fresh else ahead
            if events:
                await self._apply(conn, events, limit)
                if not await save_checkpoint(conn, self.checkpoint, start, events[-1].checkpoint):
                    raise CheckpointMoved(f"checkpoint {self.checkpoint!r} moved under its lock")
        self._moved(events[-1].checkpoint if events else start)
        return events

    async def _ahead(
        self, conn: AsyncConnection[Any], start: Checkpoint, limit: int, since: float | None
    ) -> Sequence[RecordedEvent]:
        if self._tail is None or since is None:
            return await read_all_on(conn, start, limit, self._types)
        return await self._tail.after(conn, start, limit, since)

    async def _apply(
        self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent], limit: int
    ) -> None:
        try:
            await self.projection.apply(conn, events)
        except psycopg.OperationalError:
            raise
        except Exception as e:
            if limit > 1:
                raise
            raise PoisonEvent(self.projection.name, events[0], e) from e

    def _moved(self, to: Checkpoint | None) -> None:
        self._saved = self._read = to
        self._saved_at = time.monotonic()
