"""events.log_reads against a real PostgreSQL: ranges, stream prefixes, lag and readers reached."""

from __future__ import annotations

import psycopg
from builders import meta, step
from waiting import eventually

from events.checkpoints import load_checkpoint, save_checkpoint
from events.log_reads import (
    count_all,
    count_range,
    lag_after,
    last_position,
    newest,
    read_kind_by_stream,
    read_range,
    reader_lags,
    readers_reached,
    stream_between,
    stream_ids_sort_bytewise,
    streams_in_range,
    streams_up_to,
)
from events.pool import Pool
from events.store import ANY, NO_STREAM, START, EventStore, read_all_on


async def _log(store: EventStore, *stream_ids: str) -> list[int]:
    """One event on each of `stream_ids` (each a new stream), in order; their positions."""
    positions = []
    for stream_id in stream_ids:
        written = await store.append(stream_id, NO_STREAM, [step(len(positions))], meta())
        positions.append(written.position)
    await eventually(lambda: _readable(store, positions[-1]))
    return positions


async def _readable(store: EventStore, position: int) -> bool:
    return (await store.head()).position >= position


async def test_a_range_of_positions_reads_counts_and_names_its_streams(
    store: EventStore, pool: Pool
):
    p = await _log(store, "operation-a", "instance-b", "operation-c", "health-d")

    async with pool.connection() as conn:
        assert [e.position for e in await read_range(conn, p[0], p[2], 10)] == p[1:3]
        assert [e.position for e in await read_range(conn, 0, None, 2)] == p[:2]
        assert await count_range(conn, p[1], p[2]) == 2
        assert await count_all(conn) == 4
        assert await count_range(conn, p[2], None) == 2
        assert await last_position(conn) == p[3]
        found = await streams_in_range(conn, p[0], None, ("operation", "health"))
        assert found == ["health-d", "operation-a", "operation-c"]
        assert await streams_in_range(conn, p[1], p[1], ("operation",)) == []


async def test_stream_reads_stop_at_a_version_or_at_a_checkpoint(store: EventStore, pool: Pool):
    await store.append("operation-a", NO_STREAM, [step(1), step(2), step(3)], meta())
    await store.append("operation-b", NO_STREAM, [step(1)], meta())
    await store.append("operation-a", 3, [step(4)], meta())

    async with pool.connection() as conn:
        assert [e.version for e in await stream_between(conn, "operation-a", 1, 4)] == [2, 3]
        upto = (await stream_between(conn, "operation-b", 0, 2))[0].checkpoint
        taken = await streams_up_to(conn, ["operation-a", "operation-b"], upto)
    assert [(e.stream_id, e.version) for e in taken] == [
        ("operation-a", 1),
        ("operation-a", 2),
        ("operation-a", 3),
        ("operation-b", 1),
    ]


async def test_one_kind_is_read_stream_by_stream_up_to_a_checkpoint(store: EventStore, pool: Pool):
    await store.append("backup-b", NO_STREAM, [step(1), step(2)], meta())
    await store.append("backupdest-a", NO_STREAM, [step(1)], meta())
    last = await store.append("backup-a", NO_STREAM, [step(1)], meta())
    await eventually(lambda: _readable(store, last.position))
    async with pool.connection() as conn:
        (head,) = await newest(conn, 1)
    await store.append("backup-a", ANY, [step(2)], meta())  # past the checkpoint

    async with pool.connection() as conn:
        # CI's servers sort C (so do the embedded ones); other collations build in log order.
        assert await stream_ids_sort_bytewise(conn)
        first = await read_kind_by_stream(conn, "backup", ("", 0), head.checkpoint, 2)
        rest = await read_kind_by_stream(conn, "backup", ("backup-b", 1), head.checkpoint, 2)
        after = await read_kind_by_stream(conn, "backup", ("backup-b", 2), head.checkpoint, 2)

    assert [(e.stream_id, e.version) for e in first] == [("backup-a", 1), ("backup-b", 1)]
    assert [(e.stream_id, e.version) for e in rest] == [("backup-b", 2)]
    assert after == []


async def test_newest_stops_before_an_open_transaction_and_a_reader_goes_on_from_it(
    store: EventStore, pool: Pool, database_url: str
):
    await _log(store, "operation-a", "operation-b", "operation-c")
    async with await psycopg.AsyncConnection.connect(database_url) as slow:
        await slow.execute("SELECT pg_current_xact_id()")
        await store.append("operation-late", NO_STREAM, [step(9)], meta())
        async with pool.connection() as conn:
            last = await newest(conn, 2)
            assert [e.stream_id for e in last] == ["operation-b", "operation-c"]
            assert await newest(conn, 0) == []
        await slow.rollback()

    async def follows() -> bool:
        async with pool.connection() as conn:
            after = await read_all_on(conn, last[-1].checkpoint, 10)
        return [e.stream_id for e in after] == ["operation-late"]

    await eventually(follows)


async def test_lag_counts_the_events_past_a_checkpoint_for_each_reader(
    store: EventStore, pool: Pool
):
    p = await _log(store, "operation-a", "operation-b", "operation-c")
    async with pool.connection() as conn:
        taken = (await read_range(conn, 0, p[0], 1))[0].checkpoint
        await load_checkpoint(conn, "behind")
        await load_checkpoint(conn, "ahead")
        assert await save_checkpoint(conn, "behind", START, taken)
        assert await save_checkpoint(conn, "ahead", START, await store.head())

        lag = await lag_after(conn, taken)
        lags = {r.reader: r.lag for r in await reader_lags(conn)}
        everything = await lag_after(conn, START)

    assert lag.events == 2
    assert lag.seconds >= 0
    assert lags["behind"].events == 2
    assert lags["ahead"].events == 0
    assert everything.events == 3


async def test_a_reader_reached_an_event_if_only_streams_it_does_not_read_lie_between(
    store: EventStore, pool: Pool
):
    p = await _log(store, "instance-a", "operation-b", "instance-c")
    async with pool.connection() as conn:
        first = (await read_range(conn, 0, p[0], 1))[0].checkpoint
        await load_checkpoint(conn, "instances")
        assert await save_checkpoint(conn, "instances", START, first)

        assert await readers_reached(conn, p[0], {"instances": ("instance",)})
        assert await readers_reached(conn, p[1], {"instances": ("instance",)})
        assert not await readers_reached(conn, p[2], {"instances": ("instance",)})
        assert not await readers_reached(conn, p[1], {"instances": ("operation",)})
        assert not await readers_reached(conn, p[2] + 1000, {"instances": ("instance",)})
