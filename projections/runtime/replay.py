"""Replay: repair a projection after a fix by applying part of the log to it again.

Every row a projection writes derives from one stream, so replaying positions [start, end]
means: for each stream with an event in that range, forget what the projection derived
from it and fold the stream again from its first event up to the projection's checkpoint.
That is idempotent by construction and never runs ahead of the live projector, whose
checkpoint row lock it takes for each chunk of streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from events.log_reads import streams_in_range, streams_up_to
from projections.runtime.projection import Projection
from projections.runtime.projector import lock_checkpoint


async def replay(
    pool: AsyncConnectionPool[Any],
    projection: Projection,
    *,
    start: int = 1,
    end: int | None = None,
    streams_per_transaction: int = 200,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Replay positions `start`..`end` (inclusive; `end` None means the newest); returns how
    many events were applied again. `on_progress(streams done, streams in all)`."""
    async with pool.connection() as conn:
        streams = await streams_in_range(conn, start, end, projection.stream_types)
        applied = 0
        for first in range(0, len(streams), streams_per_transaction):
            chunk = streams[first : first + streams_per_transaction]
            async with conn.transaction():
                checkpoint = await lock_checkpoint(conn, projection.name)
                await projection.forget(conn, chunk)
                events = await streams_up_to(conn, chunk, checkpoint)
                await projection.apply(conn, events)
            applied += len(events)
            if on_progress is not None:
                on_progress(first + len(chunk), len(streams))
    return applied
