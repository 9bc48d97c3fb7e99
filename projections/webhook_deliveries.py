"""Reading the deliveries of a webhook endpoint, each with every attempt. The delivery worker
writes these rows (workers/webhooks/queue.py, migration 0010): they are its durable state, not
folded from the log, so a rebuild leaves them alone."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from projections.runtime.reader import Reader, fetch_text

_DELIVERIES: Final = b"""
SELECT coalesce(json_agg(json_build_object(
    'id', d.id, 'event_id', d.event_id, 'event_type', d.event_type, 'status', d.status,
    'created_at', d.created_at, 'next_attempt_at', d.next_attempt_at,
    'attempts', (SELECT coalesce(json_agg(a ORDER BY a.attempt), '[]')
                 FROM webhook_attempts a WHERE a.delivery_id = d.id))
    ORDER BY d.created_at DESC, d.sequence DESC), '[]')::text
FROM (SELECT * FROM webhook_deliveries
      WHERE endpoint_id = %s AND org_id = %s
      ORDER BY created_at DESC, sequence DESC LIMIT %s) d
"""
_DELIVERY_EXISTS: Final = b"""
SELECT 'yes' FROM webhook_deliveries WHERE id = %s AND endpoint_id = %s AND org_id = %s
"""


class AttemptView(msgspec.Struct, frozen=True):
    attempt: int
    attempted_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None


class DeliveryView(msgspec.Struct, frozen=True):
    id: str
    event_id: str
    event_type: str
    status: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: list[AttemptView]


_deliveries: Final = msgspec.json.Decoder(list[DeliveryView], strict=False)


async def list_deliveries(
    conn: Reader, org_id: str, endpoint_id: str, limit: int
) -> list[DeliveryView]:
    """The endpoint's latest deliveries, newest first, each with its attempts in order."""
    found = await fetch_text(conn, _DELIVERIES, (endpoint_id, org_id, limit))
    return _deliveries.decode(found or "[]")


async def delivery_exists(conn: Reader, org_id: str, endpoint_id: str, delivery_id: str) -> bool:
    return await fetch_text(conn, _DELIVERY_EXISTS, (delivery_id, endpoint_id, org_id)) is not None
