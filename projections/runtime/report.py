"""What `odoofleet projections status` shows: for each projection its checkpoint, lag (in
events and seconds), state, leader, standbys and last error."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

import msgspec
from psycopg import AsyncConnection

from events.log_reads import lag_after
from events.store import Checkpoint
from projections.runtime.presence import advisory_ids, leader_lock_name, runner_lock_name

State = Literal["running", "standby", "stopped", "failed"]

# Holders of one advisory lock (bigint keys show as classid/objid with objsubid 1).
_HOLDERS: Final = (
    b"SELECT a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    b" WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
    b" AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    b" AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid"
)
_CHECKPOINT: Final = (
    b"SELECT tx_id::text::bigint, position, updated_at FROM checkpoints WHERE name = %s"
)
_STATUS: Final = (
    b"SELECT state, last_error, failed_position, rebuilt_at FROM projection_status WHERE name = %s"
)


class ProjectionReport(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    state: State
    checkpoint: Checkpoint
    checkpoint_at: datetime | None
    lag_events: int
    lag_seconds: float
    leader: str | None
    standbys: int
    last_error: str | None
    failed_position: int | None
    rebuilt_at: datetime | None


async def _holders(conn: AsyncConnection[Any], lock_name: str) -> list[str]:
    cur = await conn.execute(_HOLDERS, advisory_ids(lock_name))
    return [row[0] or "?" for row in await cur.fetchall()]


async def report(conn: AsyncConnection[Any], name: str) -> ProjectionReport:
    cur = await conn.execute(_CHECKPOINT, (name,))
    row = await cur.fetchone()
    checkpoint = Checkpoint(int(row[0]), int(row[1])) if row else Checkpoint()
    checkpoint_at = row[2] if row else None
    lag = await lag_after(conn, checkpoint)
    cur = await conn.execute(_STATUS, (name,))
    status = await cur.fetchone()
    leaders = await _holders(conn, leader_lock_name(name))
    runners = len(await _holders(conn, runner_lock_name(name)))
    state: State
    if status is not None and status[0] == "failed":
        state = "failed"
    elif leaders:
        state = "running"
    else:
        state = "standby" if runners else "stopped"
    return ProjectionReport(
        name=name,
        state=state,
        checkpoint=checkpoint,
        checkpoint_at=checkpoint_at,
        lag_events=lag.events,
        lag_seconds=lag.seconds,
        leader=leaders[0] if leaders else None,
        standbys=max(runners - len(leaders), 0),
        last_error=status[1] if status else None,
        failed_position=status[2] if status else None,
        rebuilt_at=status[3] if status else None,
    )
