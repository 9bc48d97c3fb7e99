"""read_all never skips an event, whatever the interleaving of concurrent writers."""

from __future__ import annotations

import asyncio

from builders import meta, step

from events.store import NO_STREAM, START, EventStore

WRITERS = 16
EVENTS_PER_WRITER = 1300


async def test_sixteen_writers_and_a_following_reader_see_every_event_exactly_once(
    store: EventStore,
):
    async def writer(w: int) -> None:
        for n in range(EVENTS_PER_WRITER):
            expected = NO_STREAM if n == 0 else n
            await store.append(f"operation-w{w}", expected, [step(n)], meta())

    seen: list[tuple[str, int]] = []
    checkpoints = []
    done = asyncio.Event()

    async def reader() -> None:
        checkpoint = START
        while True:
            finished = done.is_set()
            batch = await store.read_all(checkpoint, limit=500)
            for event in batch:
                assert event.checkpoint > checkpoint
                checkpoint = event.checkpoint
                seen.append((event.stream_id, event.version))
            checkpoints.append(checkpoint)
            if finished and len(seen) >= WRITERS * EVENTS_PER_WRITER:
                return
            if not batch:
                await asyncio.sleep(0)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    done.set()
    await asyncio.wait_for(reading, timeout=60)

    total = WRITERS * EVENTS_PER_WRITER
    assert total >= 20_000
    assert len(seen) == total
    assert len(set(seen)) == total
    assert checkpoints == sorted(checkpoints)
    for w in range(WRITERS):
        versions = [v for s, v in seen if s == f"operation-w{w}"]
        assert versions == list(range(1, EVENTS_PER_WRITER + 1))
