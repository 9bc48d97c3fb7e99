"""The projector runtime: exactly once, poison events, idempotence, read-your-writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from builders import meta
from projection_fixtures import (
    NOW,
    append_to_instance,
    catch_up,
    create_instance,
    instance_created,
    new_id,
    observe,
    projections_running,
    provision,
    register_server,
    request_action,
    until_readable,
)
from psycopg import AsyncConnection
from waiting import eventually

from events.catalog import build_registry
from events.checkpoints import load_checkpoint
from events.instance import InstanceRestarted, InstanceUpdated, instance_stream
from events.pool import Pool
from events.registry import encode_event
from events.store import NO_STREAM, START, EventStore, RecordedEvent
from projections.audit import AuditFilter, query_audit
from projections.catalog import build_projections
from projections.health import get_health
from projections.instances import INSTANCES, get_instance
from projections.runtime.bell import Bell, Ring
from projections.runtime.errors import PoisonEvent
from projections.runtime.fold import fold_stream
from projections.runtime.projection import Projection
from projections.runtime.projector import Projector
from projections.runtime.report import report
from projections.runtime.runner import ProjectionRunner
from projections.servers import get_server
from projections.timetravel import instance_as_of
from projections.waiting import wait_for_position


def _projection(name: str) -> Projection:
    return build_projections(build_registry())[name]


class _Wrapped:
    """A real projection whose `apply` is followed by a test's own step."""

    def __init__(self, inner: Projection) -> None:
        self.inner = inner
        self.name = inner.name
        self.tables = inner.tables
        self.stream_types = inner.stream_types

    async def after_apply(self, events: Sequence[RecordedEvent]) -> None:
        raise NotImplementedError

    async def apply(self, conn: AsyncConnection[Any], events: Sequence[RecordedEvent]) -> None:
        await self.inner.apply(conn, events)
        await self.after_apply(events)

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        await self.inner.forget(conn, stream_ids)


class _Stuck(_Wrapped):
    """Hangs after writing its rows: a batch cut off in the middle of its transaction."""

    def __init__(self, inner: Projection) -> None:
        super().__init__(inner)
        self.wrote = asyncio.Event()

    async def after_apply(self, events: Sequence[RecordedEvent]) -> None:
        self.wrote.set()
        await asyncio.Event().wait()


class _FailsAt(_Wrapped):
    """Raises after writing the rows of any batch holding the event at `position`."""

    def __init__(self, inner: Projection, position: int) -> None:
        super().__init__(inner)
        self.position = position

    async def after_apply(self, events: Sequence[RecordedEvent]) -> None:
        if any(e.position == self.position for e in events):
            raise RuntimeError("handler bug")


async def _rows(pool: Pool, table: str) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}".encode())
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_a_batch_cancelled_mid_transaction_leaves_no_trace_and_applies_once_later(
    pool: Pool, store: EventStore
):
    created = [await create_instance(store, port=20000 + 10 * n) for n in range(5)]
    await until_readable(pool, created[-1][1].position)
    stuck = _Stuck(_projection("audit"))
    batch = asyncio.create_task(_step(pool, Projector(stuck)))
    await asyncio.wait_for(stuck.wrote.wait(), 10)

    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch

    assert await _rows(pool, "audit_log") == 0
    async with pool.connection() as conn:
        assert await load_checkpoint(conn, "audit") == START
    await catch_up(pool, "audit")
    entries, total = await query_audit(pool, "org-a", AuditFilter(), 1, 100)
    assert total == 5
    assert sorted(e.resource_id for e in entries) == sorted(i for i, _ in created)


async def _step(pool: Pool, projector: Projector) -> Sequence[RecordedEvent]:
    async with pool.connection() as conn:
        return await projector.step(conn)


async def test_a_handler_that_raises_mid_batch_applies_what_precedes_and_stops_at_it(
    pool: Pool, store: EventStore
):
    created = [await create_instance(store, port=20000 + 10 * n) for n in range(4)]
    await until_readable(pool, created[-1][1].position)
    poison = created[2][1].positions[0]
    projector = Projector(_FailsAt(_projection("instances"), poison))

    with pytest.raises(PoisonEvent) as raised:
        await _step(pool, projector)

    assert raised.value.position == poison
    assert "handler bug" in str(raised.value)
    assert await _rows(pool, "instances") == 2
    async with pool.connection() as conn:
        stopped_at = await load_checkpoint(conn, "instances")
    assert stopped_at.position == poison - 1


async def test_an_event_applied_again_changes_nothing(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    restarted = InstanceRestarted(instance_id=instance_id, operation_id=new_id(), restarted_at=NOW)
    await append_to_instance(store, instance_id, restarted)
    await catch_up(pool, "instances", "audit")
    before = await get_instance(pool, "org-a", instance_id)

    async with pool.connection() as conn:
        again = await conn.execute(
            "SELECT position FROM events WHERE stream_id = %s ORDER BY version",
            (instance_stream(instance_id),),
        )
        positions = [row[0] for row in await again.fetchall()]
        events = await _events(conn, positions)
        for name in ("instances", "audit"):
            await _projection(name).apply(conn, events)

    assert await get_instance(pool, "org-a", instance_id) == before
    assert before is not None
    assert (before.status, before.version) == ("running", 4)
    assert (await query_audit(pool, "org-a", AuditFilter(), 1, 100))[1] == 2


async def _events(conn: AsyncConnection[Any], positions: list[int]) -> list[RecordedEvent]:
    from events.store import RECORDED_COLUMNS

    cur = await conn.execute(
        f"SELECT {RECORDED_COLUMNS} FROM events WHERE position = ANY(%s)"
        " ORDER BY position".encode(),
        (positions,),
    )
    return [RecordedEvent(*row) for row in await cur.fetchall()]


async def test_a_later_event_seen_first_brings_the_missing_ones_along(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store, name="One")
    update = InstanceUpdated(instance_id=instance_id, name="Two", updated_at=NOW)
    result = await append_to_instance(store, instance_id, update)

    async with pool.connection() as conn:
        (last,) = await _events(conn, [result.position])
        for name in ("instances", "audit"):
            await _projection(name).apply(conn, [last])

    view = await get_instance(pool, "org-a", instance_id)
    assert view is not None
    assert (view.name, view.version) == ("Two", 3)
    entries, _ = await query_audit(pool, "org-a", AuditFilter(), 1, 10)
    assert [e.action for e in entries] == ["instance.updated", "instance.created"]


async def test_a_poison_event_stops_its_projection_visibly_and_the_others_go_on(
    pool: Pool, store: EventStore, database_url: str, caplog: pytest.LogCaptureFixture
):
    good, _ = await create_instance(store)
    orphan = new_id()
    poison = await store.append(
        instance_stream(orphan),
        NO_STREAM,
        [InstanceUpdated(instance_id=orphan, name="no creation", updated_at=NOW)],
        meta(),
    )
    after, _ = await create_instance(store, port=20010)
    server_id = await register_server(store)
    caplog.set_level(logging.ERROR, logger="projections.runtime.runner")

    async with projections_running(pool, database_url, ("instances", "servers")):
        await eventually(lambda: get_server(pool, "org-a", server_id), message="servers go on")
        async with pool.connection() as conn:
            await eventually(
                lambda: _state_is(conn, "instances", "failed"), message="instances failed"
            )
            status = await report(conn, "instances")

    assert status.failed_position == poison.position
    assert status.last_error is not None
    assert "InstanceUpdated" in status.last_error
    assert str(poison.position) in status.last_error
    assert status.checkpoint.position < poison.position
    assert await get_instance(pool, "org-a", good) is not None
    assert await get_instance(pool, "org-a", after) is None
    assert any("cannot apply InstanceUpdated" in r.getMessage() for r in caplog.records)


async def _state_is(conn: AsyncConnection[Any], name: str, state: str) -> bool:
    return (await report(conn, name)).state == state


async def test_a_failed_projection_recovers_when_the_event_applies_again(
    pool: Pool, store: EventStore, database_url: str
):
    created = [await create_instance(store, port=20000 + 10 * n) for n in range(3)]
    poison = created[1][1].positions[0]
    bell = Ring()
    failing = ProjectionRunner(
        _FailsAt(_projection("instances"), poison), pool, database_url, bell, poll_interval=0.05
    )
    await asyncio.wait_for(failing.run(asyncio.Event()), 10)
    assert failing.state == "failed"

    fixed = ProjectionRunner(_projection("instances"), pool, database_url, bell)
    stop = asyncio.Event()
    task = asyncio.create_task(fixed.run(stop))
    async with pool.connection() as conn:
        await eventually(lambda: _state_is(conn, "instances", "running"), message="recovered")
        status = await report(conn, "instances")
    stop.set()
    await asyncio.wait_for(task, 10)

    assert status.last_error is None
    for instance_id, _ in created:
        assert await get_instance(pool, "org-a", instance_id) is not None


async def test_read_your_writes_waits_for_the_projection(
    pool: Pool, store: EventStore, database_url: str
):
    async with projections_running(pool, database_url):
        instance_id, result = await create_instance(store)
        await observe(store, instance_id)

        assert await wait_for_position(pool, result.position, timeout=10)
        assert await get_instance(pool, "org-a", instance_id) is not None
        action = await request_action(store, instance_id, "stop")
        assert await wait_for_position(pool, action.position, 10, ("instances", "audit"))
        view = await get_instance(pool, "org-a", instance_id)
        assert view is not None
        assert view.status == "stopping"
        await eventually(lambda: get_health(pool, "org-a", instance_id), message="health")


async def test_waiting_for_an_unapplied_position_gives_up_at_the_timeout(
    pool: Pool, store: EventStore
):
    _, result = await create_instance(store)
    loop = asyncio.get_running_loop()
    started = loop.time()

    assert not await wait_for_position(pool, result.position, timeout=0.2)
    assert 0.2 <= loop.time() - started < 1.0


async def test_time_travel_folds_the_events_recorded_until_then(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store, name="First")
    await append_to_instance(
        store, instance_id, InstanceUpdated(instance_id=instance_id, name="Second", updated_at=NOW)
    )
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT recorded_at FROM events WHERE stream_id = %s ORDER BY version",
            (instance_stream(instance_id),),
        )
        times = [row[0] for row in await cur.fetchall()]

    before = await instance_as_of(store, "org-a", instance_id, times[0] - timedelta(1))
    first = await instance_as_of(store, "org-a", instance_id, times[1])
    now = await instance_as_of(store, "org-a", instance_id, times[2])
    elsewhere = await instance_as_of(store, "org-b", instance_id, times[2])

    assert before is None
    assert first is not None
    assert (first.name, first.version) == ("First", 2)
    assert now is not None
    assert (now.name, now.version) == ("Second", 3)
    assert elsewhere is None


async def test_a_stream_folded_from_the_store_is_the_row_the_projection_writes(
    pool: Pool, store: EventStore
):
    instance_id, created = await create_instance(store, name="First")
    await append_to_instance(
        store, instance_id, InstanceUpdated(instance_id=instance_id, name="Second", updated_at=NOW)
    )
    await catch_up(pool, "instances")

    now = await fold_stream(store, INSTANCES, instance_stream(instance_id))
    then = await fold_stream(
        store, INSTANCES, instance_stream(instance_id), up_to_version=created.version
    )

    assert now is not None
    assert then is not None
    assert (now.name, then.name, then.version) == ("Second", "First", created.version)
    assert now == await get_instance(pool, "org-a", instance_id)


async def test_time_travel_and_the_projection_agree(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    await request_action(store, instance_id, "restart")
    await catch_up(pool, "instances")

    projected = await get_instance(pool, "org-a", instance_id)
    folded = await instance_as_of(store, "org-a", instance_id, NOW + timedelta(days=9999))

    assert folded == projected


async def test_the_bell_wakes_every_subscriber(database_url: str, store: EventStore):
    bell = Bell(database_url)
    first, second = bell.subscribe(), bell.subscribe()
    bell.start()
    try:
        await eventually(lambda: first.is_set() and second.is_set(), message="initial ring")
        first.clear()
        second.clear()
        await create_instance(store)
        await eventually(lambda: first.is_set() and second.is_set(), message="rung")
    finally:
        await bell.stop()


async def test_waiting_for_another_streams_event_does_not_wait_for_a_checkpoint_save(
    pool: Pool, store: EventStore, database_url: str
):
    async with projections_running(pool, database_url, ("instances",)):
        _, created = await create_instance(store)
        assert await wait_for_position(pool, created.position, timeout=10)
        server_id = await register_server(store)
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT max(position) FROM events WHERE stream_id = %s", (f"server-{server_id}",)
            )
            row = await cur.fetchone()
        assert row is not None
        loop = asyncio.get_running_loop()
        started = loop.time()

        assert await wait_for_position(pool, row[0], timeout=10)
        assert loop.time() - started < 0.2


async def test_waiting_covers_the_events_before_the_position_too(pool: Pool, store: EventStore):
    await create_instance(store)
    server_id = await register_server(store)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT max(position) FROM events WHERE stream_id = %s", (f"server-{server_id}",)
        )
        row = await cur.fetchone()
    assert row is not None

    assert not await wait_for_position(pool, row[0], timeout=0.1)
    await catch_up(pool, "instances")
    assert await wait_for_position(pool, row[0], timeout=0.1)


async def test_an_append_hidden_by_an_older_open_transaction_is_applied_soon_after_it_ends(
    pool: Pool, database_url: str
):
    """The bell rings for an append that an older, still open transaction hides from log
    readers; the runner looks again soon after instead of waiting for its next poll (an hour
    here), so read-your-writes does not wait on it. The append rings the bell exactly once
    (EventStore could ring again later, after the older transaction ended)."""
    ring = Ring()
    runner = ProjectionRunner(
        _projection("instances"), pool, database_url, ring, poll_interval=3600
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await eventually(lambda: _state_is_now(pool, "instances", "running"), message="leads")
        async with await AsyncConnection.connect(database_url) as older:
            await older.execute("SELECT pg_current_xact_id()")
            instance_id, position = await _append_created(database_url)
            ring.set()
            await eventually(lambda: not ring.is_set(), message="the runner took the ring")
            await older.commit()
        assert await wait_for_position(pool, position, timeout=5, projections=("instances",))
        assert await get_instance(pool, "org-a", instance_id) is not None
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def _state_is_now(pool: Pool, name: str, state: str) -> bool:
    async with pool.connection() as conn:
        return await _state_is(conn, name, state)


async def _append_created(database_url: str) -> tuple[str, int]:
    """An InstanceCreated written without EventStore, which would ring the bell itself."""
    instance_id = new_id()
    event = instance_created(instance_id)
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO streams (stream_id, version) VALUES (%s, 1)",
            (instance_stream(instance_id),),
        )
        cur = await conn.execute(
            "INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,"
            " event_id) VALUES (%s, 1, %s, %s, %s::jsonb, %s::jsonb, gen_random_uuid())"
            " RETURNING position",
            (
                instance_stream(instance_id),
                event.event_type(),
                event.schema_version,
                encode_event(event),
                msgspec.json.encode(meta()).decode(),
            ),
        )
        row = await cur.fetchone()
    assert row is not None
    return instance_id, int(row[0])


async def test_row_loads_are_planned_for_each_batch_never_prepared(
    store: EventStore, database_url: str
) -> None:
    """A prepared load of a batch's rows kept the generic plan chosen while the table was
    small (a scan of it): each load grew with the table (0.7 -> 13 ms by a few thousand
    instances, bench/README.md). So the instances' and the audit's loads are never prepared."""
    for n in range(8):
        await create_instance(store, port=20000 + 10 * n)
    projections = build_projections(build_registry())
    async with await AsyncConnection.connect(database_url, autocommit=True) as conn:
        for name in ("instances", "audit"):
            projector = Projector(projections[name], batch_size=1)
            while await projector.step(conn):
                pass
        cur = await conn.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%= ANY(%'"
            " AND (statement LIKE '%FROM instances%' OR statement LIKE '%FROM audit_subjects%')"
        )
        prepared = await cur.fetchone()

    assert prepared == (0,)
