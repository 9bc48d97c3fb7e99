"""One read of the log's tail for all the projectors of a process.

Woken by the same append, the projectors of a process (eleven) each read the events after
the same checkpoint: eleven queries returning the same rows, most of them of streams the
projector does not read, and as many again to find they had caught up. A projector now asks
the process's LogTail, which lets a request join a read of the same slice (same start, same
limit) sent at or after the moment the request needs the log as of (`since`): an event
committed before that moment is in any read sent after it, so the joined answer is the one
the request would have had by asking itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Collection, Sequence
from typing import Any, Final

from psycopg import AsyncConnection

from events.store import Checkpoint, RecordedEvent, read_all_on

_KEPT: Final = 16


class _Abandoned(Exception):
    """The request that sent a read was cancelled before the answer came."""


class _Read:
    def __init__(self) -> None:
        self.sent_at = time.monotonic()
        self.events: asyncio.Future[Sequence[RecordedEvent]] = (
            asyncio.get_running_loop().create_future()
        )
        # A failed read nobody joined must not be reported as never retrieved.
        self.events.add_done_callback(lambda f: f.cancelled() or f.exception())


class LogTail:
    """Reads slices of the log with the data of `stream_types`' events (`{}` for others,
    see read_all_on), sharing each read with the requests that may use it."""

    def __init__(self, stream_types: Collection[str]) -> None:
        self._types = tuple(sorted(set(stream_types)))
        self._reads: OrderedDict[tuple[Checkpoint, int], _Read] = OrderedDict()

    async def after(
        self, conn: AsyncConnection[Any], start: Checkpoint, limit: int, since: float
    ) -> Sequence[RecordedEvent]:
        """Up to `limit` events after `start`, as a read sent at `since` (time.monotonic)
        or later saw them; `conn` reads them if no such read is on its way or done."""
        key = (start, limit)
        while True:
            read = self._reads.get(key)
            if read is None or read.sent_at < since:
                return await self._send(conn, key)
            try:
                return await asyncio.shield(read.events)
            except _Abandoned:
                continue

    async def _send(
        self, conn: AsyncConnection[Any], key: tuple[Checkpoint, int]
    ) -> Sequence[RecordedEvent]:
        read = _Read()
        self._reads[key] = read
        self._reads.move_to_end(key)
        while len(self._reads) > _KEPT:
            self._reads.popitem(last=False)
        try:
            events = tuple(await read_all_on(conn, key[0], key[1], self._types))
        except BaseException as e:
            if self._reads.get(key) is read:
                del self._reads[key]
            read.events.set_exception(_Abandoned() if isinstance(e, asyncio.CancelledError) else e)
            raise
        read.events.set_result(events)
        return events
