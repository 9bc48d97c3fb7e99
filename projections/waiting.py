"""Read-your-writes: wait until projections have applied a given event (DESIGN.md)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool

from events.log_reads import readers_reached
from projections.catalog import READS

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
    readers = {name: READS[name] for name in projections}
    while True:
        async with pool.connection() as conn:
            reached = await readers_reached(conn, position, readers)
        if reached:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(step, left))
        step = min(step * 2, _LONGEST_STEP)
