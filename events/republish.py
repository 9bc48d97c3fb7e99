"""Republish: send a range of the log to JetStream again, exactly as the relay does (same
subject, headers and payload), for consumers that need it again. Within JetStream's
duplicate window, Nats-Msg-Id = event id makes JetStream drop a republished event; the
count of those is returned so the operator can tell."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext
from psycopg_pool import AsyncConnectionPool

from events.log_reads import read_range
from events.publishing import headers_for, payload_for, subject_for
from events.store import RecordedEvent


async def republish(
    pool: AsyncConnectionPool[Any],
    js: JetStreamContext,
    *,
    stream: str,
    subject_prefix: str,
    start: int,
    end: int | None = None,
    page_size: int = 500,
    on_progress: Callable[[RecordedEvent], None] | None = None,
) -> tuple[int, int]:
    """Publish the events at positions `start`..`end` (inclusive) in position order, each
    acknowledged before the next; returns (published, dropped by JetStream as duplicates)."""
    after, published, duplicates = start - 1, 0, 0
    while True:
        async with pool.connection() as conn:
            page = await read_range(conn, after, end, page_size)
        if not page:
            return published, duplicates
        for event in page:
            ack = await js.publish(
                subject_for(subject_prefix, event),
                payload_for(event),
                stream=stream,
                headers=headers_for(event),
            )
            published += 1
            duplicates += bool(ack.duplicate)
            if on_progress is not None:
                on_progress(event)
        after = page[-1].position
