"""The process's shared read of the log's tail (projections/runtime/tail.py): projectors
woken by one append share one read, and none is answered by a read older than it needs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from projection_fixtures import create_instance
from psycopg import AsyncConnection

from events.pool import Pool
from events.store import START, Checkpoint, EventStore, RecordedEvent
from projections.runtime.tail import LogTail


class _CountingTail(LogTail):
    """Counts the reads it sends."""

    def __init__(self) -> None:
        super().__init__(["instance"])
        self.sent = 0
        self.sending = asyncio.Event()

    async def _send(
        self, conn: AsyncConnection[Any], key: tuple[Checkpoint, int]
    ) -> tuple[RecordedEvent, ...]:
        self.sent += 1
        self.sending.set()
        return tuple(await super()._send(conn, key))


async def _after(pool: Pool, tail: LogTail, start: Checkpoint, since: float) -> list[str]:
    async with pool.connection() as conn:
        return [e.stream_id for e in await tail.after(conn, start, 100, since)]


async def test_requests_for_the_same_slice_at_the_same_time_share_one_read(
    pool: Pool, store: EventStore
) -> None:
    instance_id, _ = await create_instance(store)
    tail = _CountingTail()
    since = time.monotonic()

    answers = await asyncio.gather(*(_after(pool, tail, START, since) for _ in range(5)))

    assert tail.sent == 1
    assert all(answer == answers[0] for answer in answers)
    assert f"instance-{instance_id}" in answers[0]


async def test_a_request_needing_a_newer_log_than_a_read_was_sent_at_reads_again(
    pool: Pool, store: EventStore
) -> None:
    tail = _CountingTail()
    first = await _after(pool, tail, START, time.monotonic())
    later, _ = await create_instance(store)
    since = time.monotonic()

    again = await _after(pool, tail, START, since)

    assert tail.sent == 2
    assert f"instance-{later}" not in first
    assert f"instance-{later}" in again


async def test_a_request_that_needs_no_newer_log_takes_the_read_already_done(
    pool: Pool, store: EventStore
) -> None:
    await create_instance(store)
    tail = _CountingTail()
    since = time.monotonic()
    first = await _after(pool, tail, START, since)

    again = await _after(pool, tail, START, since)

    assert (tail.sent, again) == (1, first)


async def test_requests_joining_a_cancelled_read_read_themselves(
    pool: Pool, store: EventStore
) -> None:
    instance_id, _ = await create_instance(store)
    tail = _CountingTail()
    since = time.monotonic()
    sender = asyncio.create_task(_after(pool, tail, START, since))
    await tail.sending.wait()
    joiner = asyncio.create_task(_after(pool, tail, START, since))
    await asyncio.sleep(0)
    sender.cancel()

    answer = await asyncio.wait_for(joiner, 10)

    assert tail.sent == 2
    assert f"instance-{instance_id}" in answer
