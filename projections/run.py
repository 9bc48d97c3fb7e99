"""Running the projections of this process: `odoofleet project`, `odoofleet dev`, tests."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

from events.catalog import build_registry
from projections.catalog import build_projections, select
from projections.runtime.bell import Bell
from projections.runtime.presence import Presence
from projections.runtime.runner import ProjectionRunner
from projections.runtime.tail import LogTail


async def run_projections(
    pool: AsyncConnectionPool[Any],
    conninfo: str,
    stop: asyncio.Event,
    names: tuple[str, ...] | None = None,
) -> None:
    """Run every projection (or the named ones) as leader or standby until `stop` is set.

    Another process running the same projections stands by and takes over within about a
    second of this one dying.
    """
    chosen = select(build_projections(build_registry()), names)
    bell = Bell(conninfo)
    presence = Presence(conninfo, [projection.name for projection in chosen])
    tail = LogTail({kind for projection in chosen for kind in projection.stream_types})
    runners = [
        ProjectionRunner(projection, pool, conninfo, bell.subscribe(), tail=tail)
        for projection in chosen
    ]
    bell.start()
    presence.start()
    try:
        await asyncio.gather(*(runner.run(stop) for runner in runners))
    finally:
        await presence.stop()
        await bell.stop()
