"""The delivery queue in PostgreSQL: deliveries per endpoint in log order, their attempts, and
the lanes that let one worker at a time deliver an endpoint (migration 0010).

A lane's `due_at` is when its first pending delivery (in log order) is due ('infinity':
none). Whoever changes what is pending takes the lane's row lock first, and a released lane
reads what is pending in a statement after that lock: a delivery enqueued while a worker
releases the lane is never left without a due lane.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import msgspec
from psycopg import AsyncConnection

Status = Literal["delivered", "pending", "failed"]


class NewDelivery(msgspec.Struct, frozen=True):
    endpoint_id: str
    org_id: str
    event_id: str
    sequence: int
    event_type: str
    payload: str


class Delivery(msgspec.Struct, frozen=True):
    id: uuid.UUID
    endpoint_id: str
    event_id: uuid.UUID
    payload: str
    attempts: int
    first_attempt_at: datetime | None
    next_attempt_at: datetime


class Attempt(msgspec.Struct, frozen=True):
    outcome: str  # delivered | failed | refused | timeout | network
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None


_ENQUEUE: Final = b"""
INSERT INTO webhook_deliveries
    (id, endpoint_id, org_id, event_id, sequence, event_type, payload, status,
     next_attempt_at, created_at)
SELECT gen_random_uuid(), d.endpoint_id, d.org_id, d.event_id::uuid, d.sequence, d.event_type,
       d.payload, 'pending', %(now)s, %(now)s
FROM json_to_recordset(%(rows)s::json) AS d(endpoint_id text, org_id text, event_id text,
     sequence bigint, event_type text, payload text)
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""
# A lane that is waiting to retry its head keeps its time: new deliveries queue behind it.
_WAKE_IDLE: Final = b"""
INSERT INTO webhook_lanes (endpoint_id, due_at) SELECT unnest(%(ids)s::text[]), %(now)s
ON CONFLICT (endpoint_id) DO UPDATE SET due_at = CASE
    WHEN webhook_lanes.due_at = 'infinity' THEN EXCLUDED.due_at ELSE webhook_lanes.due_at END
"""
_WAKE_NOW: Final = b"""
INSERT INTO webhook_lanes (endpoint_id, due_at) VALUES (%(id)s, %(now)s)
ON CONFLICT (endpoint_id) DO UPDATE SET due_at = LEAST(webhook_lanes.due_at, EXCLUDED.due_at)
"""
# Leases run on the database's clock (how long a worker may stay silent), due times on the
# worker's (the retry schedule, which tests replace).
_CLAIM: Final = b"""
UPDATE webhook_lanes SET leased_until = clock_timestamp() + %(lease)s, leased_by = %(worker)s
WHERE endpoint_id = (
    SELECT endpoint_id FROM webhook_lanes
    WHERE due_at <= %(now)s AND leased_until < clock_timestamp()
    ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING endpoint_id
"""
_NEXT: Final = b"""
SELECT id, endpoint_id, event_id, payload, attempts, first_attempt_at, next_attempt_at
FROM webhook_deliveries WHERE endpoint_id = %s AND status = 'pending'
ORDER BY sequence LIMIT %s
"""
_LOCK_LANE: Final = b"SELECT 1 FROM webhook_lanes WHERE endpoint_id = %s FOR UPDATE"
_RELEASE: Final = b"""
UPDATE webhook_lanes SET leased_until = '-infinity', leased_by = NULL,
    due_at = coalesce((SELECT next_attempt_at FROM webhook_deliveries
                       WHERE endpoint_id = %(id)s AND status = 'pending'
                       ORDER BY sequence LIMIT 1), 'infinity')
WHERE endpoint_id = %(id)s AND leased_by = %(worker)s
"""

# One statement, so one round trip and its own transaction: the attempt, what follows it,
# and the lane's lease extended. Attempts are numbered by the row itself: a worker whose lease
# ran out while it was still sending may record its attempt beside the next worker's. The
# commit does not wait for the disk (set_config … true lasts to the end of the transaction):
# an outcome lost in a crash only sends the delivery again, with the same id, which
# at-least-once delivery allows; waiting would cost every delivery a flush.
_SETTLE: Final = b"""
WITH no_flush AS (SELECT set_config('synchronous_commit', 'off', true)),
settled AS (
    UPDATE webhook_deliveries SET status = %(status)s, attempts = attempts + 1,
        first_attempt_at = coalesce(first_attempt_at, %(at)s), next_attempt_at = %(next)s
    WHERE id = %(id)s RETURNING id, attempts),
extended AS (
    UPDATE webhook_lanes SET leased_until = clock_timestamp() + %(lease)s
    WHERE endpoint_id = %(endpoint)s AND leased_by = %(worker)s)
INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, outcome, status_code,
    latency_ms, response_excerpt, error)
SELECT id, attempts, %(at)s, %(outcome)s, %(status_code)s, %(latency_ms)s, %(excerpt)s, %(error)s
FROM settled, no_flush
"""

_CANCEL: Final = b"""
UPDATE webhook_deliveries SET status = 'cancelled'
WHERE endpoint_id = %s AND status = 'pending'
"""
_REDELIVER: Final = b"""
UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = %(now)s,
    first_attempt_at = NULL
WHERE id = %(delivery)s AND endpoint_id = %(endpoint)s
"""

_rows: Final = msgspec.json.Encoder()


async def enqueue(conn: AsyncConnection[Any], rows: Sequence[NewDelivery], now: datetime) -> None:
    """Add deliveries (an event already queued for an endpoint is not queued twice), inside
    the caller's transaction."""
    if not rows:
        return
    await conn.execute(_ENQUEUE, {"rows": _rows.encode(rows).decode(), "now": now})
    endpoints = sorted({row.endpoint_id for row in rows})  # one lock order for every writer
    await conn.execute(_WAKE_IDLE, {"ids": endpoints, "now": now})


async def redeliver(
    conn: AsyncConnection[Any], endpoint_id: str, delivery_id: str, now: datetime
) -> None:
    """Send a delivery again, whatever became of it; its 24 hours start again."""
    await conn.execute(_WAKE_NOW, {"id": endpoint_id, "now": now})
    await conn.execute(_REDELIVER, {"delivery": delivery_id, "endpoint": endpoint_id, "now": now})


async def cancel(conn: AsyncConnection[Any], endpoint_id: str) -> None:
    """Drop what an endpoint still had pending (it was disabled or deleted)."""
    await conn.execute(_LOCK_LANE, (endpoint_id,))
    await conn.execute(_CANCEL, (endpoint_id,))


async def claim_lane(
    conn: AsyncConnection[Any], worker: str, now: datetime, lease: timedelta
) -> str | None:
    cur = await conn.execute(_CLAIM, {"worker": worker, "now": now, "lease": lease})
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def next_pending(conn: AsyncConnection[Any], endpoint_id: str, limit: int) -> list[Delivery]:
    """The endpoint's first `limit` pending deliveries, in log order."""
    cur = await conn.execute(_NEXT, (endpoint_id, limit))
    return [Delivery(*row) for row in await cur.fetchall()]


async def settle(
    conn: AsyncConnection[Any],
    delivery: Delivery,
    attempt: Attempt,
    *,
    status: Status,
    at: datetime,
    next_attempt_at: datetime,
    worker: str,
    lease: timedelta,
) -> None:
    """Record an attempt and what follows it, and extend the lane's lease (autocommit: one
    statement, its own transaction)."""
    await conn.execute(
        _SETTLE,
        {
            "id": delivery.id,
            "endpoint": delivery.endpoint_id,
            "worker": worker,
            "lease": lease,
            "status": status,
            "at": at,
            "next": next_attempt_at,
            "outcome": attempt.outcome,
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "excerpt": attempt.response_excerpt,
            "error": attempt.error,
        },
    )


async def release(conn: AsyncConnection[Any], endpoint_id: str, worker: str) -> None:
    """Give the lane back, due when its first pending delivery is (in a transaction)."""
    await conn.execute(_LOCK_LANE, (endpoint_id,))
    await conn.execute(_RELEASE, {"id": endpoint_id, "worker": worker})
