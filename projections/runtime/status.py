"""Each projection's state as its leader records it (`projection_status`): running, failed
with the error and position that stopped it, or stopped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from psycopg import AsyncConnection

from events.store import RecordedEvent

_RUNNING: Final = (
    b"INSERT INTO projection_status (name, state) VALUES (%s, 'running')"
    b" ON CONFLICT (name) DO UPDATE SET state = 'running', updated_at = now()"
    b" WHERE projection_status.state <> 'failed'"
)
_RECOVERED: Final = (
    b"UPDATE projection_status SET state = 'running', last_error = NULL,"
    b" failed_position = NULL, updated_at = now() WHERE name = %s"
)
_FAILED: Final = (
    b"INSERT INTO projection_status (name, state, last_error, failed_position)"
    b" VALUES (%s, 'failed', %s, %s) ON CONFLICT (name) DO UPDATE SET state = 'failed',"
    b" last_error = EXCLUDED.last_error, failed_position = EXCLUDED.failed_position,"
    b" updated_at = now()"
)
_STOPPED: Final = (
    b"UPDATE projection_status SET state = 'stopped', updated_at = now()"
    b" WHERE name = %s AND state = 'running'"
)
# A rebuild applied every event, the one that stopped the projection included: that
# failure is over (the runner that met it has ended; the next one to lead starts afresh).
_REBUILT: Final = (
    b"INSERT INTO projection_status (name, state, rebuilt_at) VALUES (%s, 'stopped', now())"
    b" ON CONFLICT (name) DO UPDATE SET rebuilt_at = now(), updated_at = now(),"
    b" last_error = NULL, failed_position = NULL, state = CASE"
    b" WHEN projection_status.state = 'failed' THEN 'stopped' ELSE projection_status.state END"
)


class Failure(NamedTuple):
    """What stopped a projection: the event at `position`, or (None) something else."""

    position: int | None

    def passed_by(self, batch: Sequence[RecordedEvent]) -> bool:
        """Whether applying `batch` got past the failure."""
        if self.position is None:
            return bool(batch)
        return any(event.position == self.position for event in batch)


async def record_running(conn: AsyncConnection[Any], name: str) -> Failure | None:
    """Record that a leader runs `name`. A failed projection stays failed until the leader
    gets past its failure (record_recovered); then this returns that failure."""
    await conn.execute(_RUNNING, (name,))
    cur = await conn.execute(
        "SELECT state, failed_position FROM projection_status WHERE name = %s", (name,)
    )
    row = await cur.fetchone()
    return Failure(row[1]) if row is not None and row[0] == "failed" else None


async def record_recovered(conn: AsyncConnection[Any], name: str) -> None:
    await conn.execute(_RECOVERED, (name,))


async def record_failed(
    conn: AsyncConnection[Any], name: str, error: str, position: int | None
) -> None:
    await conn.execute(_FAILED, (name, error, position))


async def record_stopped(conn: AsyncConnection[Any], name: str) -> None:
    await conn.execute(_STOPPED, (name,))


async def record_rebuilt(conn: AsyncConnection[Any], name: str) -> None:
    await conn.execute(_REBUILT, (name,))
