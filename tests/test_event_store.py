"""The event store against a real PostgreSQL: append, conflicts, retries, reading."""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

import pytest
from builders import meta, step
from waiting import eventually

from events.errors import DuplicateEventId, WrongExpectedVersion
from events.metadata import EventMetadata
from events.migrate import migrate
from events.pool import Pool, open_pool
from events.registry import DomainEvent, EventRegistry
from events.store import ANY, NO_STREAM, START, Checkpoint, EventStore, NewEvents


async def test_append_to_a_new_stream_returns_its_version_and_positions(store: EventStore):
    result = await store.append("operation-1", NO_STREAM, [step(1), step(2)], meta())

    assert result.version == 2
    assert len(result.positions) == 2
    assert result.positions[0] < result.positions[1]


async def test_read_stream_returns_events_as_stored_in_version_order(store: EventStore):
    await store.append("operation-1", NO_STREAM, [step(1)], meta())
    await store.append("operation-1", 1, [step(2), step(3)], meta())

    events = await store.read_stream("operation-1")

    assert [e.version for e in events] == [1, 2, 3]
    assert store.decode_all(events) == [step(1), step(2), step(3)]
    assert [e.version for e in await store.read_stream("operation-1", after_version=2)] == [3]


async def test_load_stream_decodes_the_events_with_the_version_and_organization(
    store: EventStore,
):
    await store.append("operation-1", NO_STREAM, [step(1)], meta(org="org-b"))
    await store.append("operation-1", 1, [step(2), step(3)], meta(org="org-b"))

    whole = await store.load_stream("operation-1")
    rest = await store.load_stream("operation-1", after_version=2)

    assert (whole.events, whole.version, whole.org_id) == ([step(1), step(2), step(3)], 3, "org-b")
    assert (rest.events, rest.version) == ([step(3)], 3)


async def test_a_stream_is_read_whole_however_long(store: EventStore):
    await store.append("operation-1", NO_STREAM, [step(n) for n in range(10_001)], meta())

    assert len(await store.read_stream("operation-1")) == 10_001
    assert (await store.load_stream("operation-1")).version == 10_001


async def test_load_stream_of_no_stream_is_empty_at_version_zero(store: EventStore):
    loaded = await store.load_stream("operation-none")

    assert (loaded.events, loaded.version, loaded.org_id) == ([], 0, "")


async def test_load_streams_reads_each_after_its_own_version(store: EventStore):
    await store.append("operation-1", NO_STREAM, [step(1), step(2)], meta())
    await store.append("operation-2", NO_STREAM, [step(3)], meta())

    loaded = await store.load_streams({"operation-1": 1, "operation-2": 0, "operation-3": 0})

    assert {sid: (s.events, s.version) for sid, s in loaded.items()} == {
        "operation-1": ([step(2)], 2),
        "operation-2": ([step(3)], 1),
        "operation-3": ([], 0),
    }


async def test_the_store_decodes_with_the_registry_it_was_built_with(pool: Pool):
    class Renamed(DomainEvent, frozen=True, kw_only=True):
        schema_version: ClassVar[int] = 2
        title: str

    registry = EventRegistry([Renamed])
    registry.upcaster("Renamed", 1)(lambda old: {"title": old["name"]})
    store = EventStore(pool, registry)
    await store.append("renamed-1", NO_STREAM, [_Old(name="x")], meta())

    assert (await store.load_stream("renamed-1")).events == [Renamed(title="x")]


class _Old(DomainEvent, frozen=True, kw_only=True):
    """`Renamed` as version 1 wrote it."""

    name: str

    @classmethod
    def event_type(cls) -> str:
        return "Renamed"


async def test_wrong_expected_version_raises_a_typed_conflict(store: EventStore):
    await store.append("operation-1", NO_STREAM, [step(1)], meta())

    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append("operation-1", 5, [step(2)], meta())

    assert (raised.value.stream_id, raised.value.expected, raised.value.actual) == (
        "operation-1",
        5,
        1,
    )


async def test_no_stream_expected_on_an_existing_stream_conflicts(store: EventStore):
    await store.append("slug-org-a-acme", NO_STREAM, [step(1)], meta())

    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append("slug-org-a-acme", NO_STREAM, [step(2)], meta())

    assert raised.value.actual == 1


async def test_exact_version_on_a_missing_stream_conflicts_with_actual_none(store: EventStore):
    with pytest.raises(WrongExpectedVersion) as raised:
        await store.append("operation-x", 1, [step(1)], meta())

    assert raised.value.actual is None


async def test_any_appends_whatever_the_version(store: EventStore):
    await store.append("operation-1", ANY, [step(1)], meta())
    result = await store.append("operation-1", ANY, [step(2)], meta())

    assert result.version == 2


async def test_resending_an_append_with_the_same_event_ids_is_idempotent(store: EventStore):
    ids = [uuid.uuid4(), uuid.uuid4()]
    first = await store.append("operation-1", NO_STREAM, [step(1), step(2)], meta(), ids)

    again = await store.append("operation-1", NO_STREAM, [step(1), step(2)], meta(), ids)
    with_any = await store.append("operation-1", ANY, [step(1), step(2)], meta(), ids)

    assert again == first == with_any
    assert len(await store.read_stream("operation-1")) == 2


async def test_an_event_id_reused_in_another_stream_is_refused(store: EventStore):
    ids = [uuid.uuid4()]
    await store.append("operation-1", NO_STREAM, [step(1)], meta(), ids)

    with pytest.raises(DuplicateEventId):
        await store.append("operation-2", NO_STREAM, [step(1)], meta(), ids)


async def test_concurrent_appends_at_one_expected_version_let_exactly_one_win(
    store: EventStore,
):
    await store.append("operation-1", NO_STREAM, [step(0)], meta())

    results = await asyncio.gather(
        *(store.append("operation-1", 1, [step(n)], meta()) for n in range(10)),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, WrongExpectedVersion) for r in results if isinstance(r, Exception))


async def test_batch_append_is_all_or_nothing(store: EventStore):
    from events.store import NewEvents

    await store.append("operation-2", NO_STREAM, [step(1)], meta())
    batch = [
        NewEvents("operation-1", NO_STREAM, [step(1)], meta()),
        NewEvents("operation-2", NO_STREAM, [step(2)], meta()),
    ]

    with pytest.raises(WrongExpectedVersion):
        await store.append_batch(batch)

    assert await store.read_stream("operation-1") == []
    ok = await store.append_batch([NewEvents("operation-1", NO_STREAM, [step(1)], meta())])
    assert ok[0].version == 1


async def test_metadata_round_trips(store: EventStore):
    import msgspec

    written = meta()
    await store.append("operation-1", NO_STREAM, [step(1)], written)

    (event,) = await store.read_stream("operation-1")

    assert msgspec.json.decode(event.metadata, type=EventMetadata) == written


async def test_read_all_returns_the_log_in_checkpoint_order(store: EventStore):
    for n in range(5):
        await store.append(f"operation-{n}", NO_STREAM, [step(n)], meta())
    # Any transaction open elsewhere in the cluster holds readers back: wait, don't assume.
    await eventually(lambda: _visible(store, 5))

    first = await store.read_all(START, limit=3)
    rest = await store.read_all(first[-1].checkpoint, limit=100)

    assert [e.stream_id for e in first + rest] == [f"operation-{n}" for n in range(5)]
    assert await store.read_all(rest[-1].checkpoint) == []
    assert await store.head() == rest[-1].checkpoint


async def test_read_all_does_not_pass_an_open_transaction(store: EventStore, database_url: str):
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url) as slow:
        # A writer whose transaction started first but commits last.
        await slow.execute("SELECT pg_current_xact_id()")
        await store.append("operation-late", NO_STREAM, [step(2)], meta())
        assert await store.read_all(START) == []
        await slow.execute(
            "INSERT INTO events (stream_id, version, event_type, schema_version, data,"
            " metadata, event_id) VALUES ('operation-early', 1, 'OperationStepCompleted', 1,"
            " '{}', '{}', gen_random_uuid())"
        )
        await slow.commit()

    await eventually(lambda: _visible(store, 2))
    seen = await store.read_all(START)
    assert [e.stream_id for e in seen] == ["operation-early", "operation-late"]


async def test_a_stream_s_versions_follow_log_order_when_a_batch_waits_mid_way(
    store: EventStore, database_url: str
):
    """A batch that has written (and so holds a transaction id) and then waits must not let a
    later append to one of its streams commit a lower version under a higher id: a log reader
    would then see that stream's versions out of order."""
    import psycopg

    await store.append("operation-held", NO_STREAM, [step(1)], meta())
    await store.append("operation-shared", NO_STREAM, [step(1)], meta())
    async with await psycopg.AsyncConnection.connect(database_url) as holder:
        await holder.execute("SELECT 1 FROM streams WHERE stream_id = 'operation-held' FOR UPDATE")
        batch = asyncio.create_task(
            store.append_batch(
                [
                    NewEvents("operation-new", NO_STREAM, [step(1)], meta()),
                    NewEvents("operation-held", ANY, [step(2)], meta()),
                    NewEvents("operation-shared", ANY, [step(2)], meta()),
                ]
            )
        )
        await eventually(lambda: _backends_waiting_on_locks(database_url, 1))
        single = asyncio.create_task(store.append("operation-shared", ANY, [step(3)], meta()))
        await eventually(lambda: _done_or_waiting(single, database_url))
        await holder.commit()
    await asyncio.gather(batch, single)

    await eventually(lambda: _visible(store, 5))
    shared = [e.version for e in await store.read_all(START) if e.stream_id == "operation-shared"]
    assert shared == [1, 2, 3]


async def _backends_waiting_on_locks(database_url: str, count: int) -> bool:
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cur.fetchone()
        return row is not None and int(row[0]) >= count


async def _done_or_waiting(task: asyncio.Task[object], database_url: str) -> bool:
    return task.done() or await _backends_waiting_on_locks(database_url, 2)


async def test_migrate_is_idempotent_and_safe_concurrently(database_url: str):
    applied = await asyncio.gather(migrate(database_url), migrate(database_url))

    assert applied == [[], []]


async def test_read_all_checkpoints_compare_in_log_order():
    assert Checkpoint(5, 100) < Checkpoint(6, 1)
    assert Checkpoint(5, 1) < Checkpoint(5, 2)


async def _visible(store: EventStore, count: int) -> bool:
    return len(await store.read_all(START, limit=count + 1)) >= count


async def test_reading_several_streams_is_planned_for_each_call_never_prepared(database_url: str):
    """A prepared read of several streams kept the generic plan PostgreSQL chose while the
    log was small (a hash join over a scan of `events`): by 3,000 creates each read took four
    times as long (bench/README.md). So it is never prepared, however often it runs."""
    pool = await open_pool(database_url, max_size=1)
    try:
        store = EventStore(pool)
        for _ in range(10):
            await store.load_streams({"operation-1": 0, "operation-2": 0})
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%unnest(%'"
            )
            prepared = await cur.fetchone()
    finally:
        await pool.close()

    assert prepared == (0,)
