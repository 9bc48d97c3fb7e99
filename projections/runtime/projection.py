"""What the runtime needs from a projection, and the common kind: one folded row per stream."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from typing import Any, Generic, Protocol, runtime_checkable

from psycopg import AsyncConnection

from events.registry import EventRegistry
from events.store import RecordedEvent
from projections.runtime.buffer import RowBuffer
from projections.runtime.fold import Folder, R, RowStore, fold_batch
from projections.runtime.tables import TableRows


class Projection(Protocol):
    """A read model built from the log. Every row it writes derives from one stream, so a
    replay can forget the rows of some streams and apply their history again."""

    @property
    def name(self) -> str:
        """Its checkpoint, leader lock and status go by this name."""

    @property
    def tables(self) -> tuple[str, ...]:
        """The tables it owns: a rebuild builds new ones and swaps them in."""

    @property
    def stream_types(self) -> tuple[str, ...]:
        """The kinds of stream it reads (`instance`, `server`, …)."""

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        """Apply a batch of the log (events of other streams are ignored), inside the
        caller's transaction."""

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        """Delete everything derived from `stream_ids`."""


@runtime_checkable
class Buffers(Protocol):
    """A projection whose rows a rebuild may keep in memory between batches."""

    def buffered(self, capacity: int) -> tuple[Projection, RowBuffer[Any]]:
        """A copy of it that keeps its rows in the returned buffer (see RowBuffer)."""


class FoldProjection(Generic[R]):
    """A table with one row per stream of one type, folded by a Folder."""

    def __init__(self, name: str, folder: Folder[R], rows: TableRows[R], registry: EventRegistry):
        self.name = name
        self.tables = (rows.table,)
        self.stream_types = (folder.stream_type,)
        self._folders = {folder.stream_type: folder}
        self._rows: RowStore[R] = rows
        self._registry = registry

    def buffered(self, capacity: int) -> tuple[Projection, RowBuffer[Any]]:
        buffer = RowBuffer(self._rows, capacity)
        buffering = copy.copy(self)
        buffering._rows = buffer
        return buffering, buffer

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        await fold_batch(conn, events, self._folders, self._rows, self._registry)

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        await self._rows.forget(conn, stream_ids)
