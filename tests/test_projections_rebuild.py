"""Zero-downtime rebuild and replay: same read model, reads never fail, repairs by range."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from builders import meta
from projection_fixtures import (
    NOW,
    busy_log,
    catch_up,
    create_instance,
    differences_from_a_fresh_build,
    health_observed,
    new_id,
    observe,
    projections_running,
    register_server,
    server_registered,
    until_readable,
)
from psycopg import AsyncConnection

from events.catalog import build_registry
from events.checkpoints import load_checkpoint
from events.health import health_stream
from events.instance import InstanceUpdated, instance_stream
from events.operation import OperationStarted, operation_stream
from events.pool import Pool
from events.server import server_stream
from events.store import ANY, NO_STREAM, EventStore
from projections.audit import AuditFilter, SubjectRows, query_audit
from projections.catalog import NAMES, build_projections
from projections.instances import get_instance, list_instances
from projections.runtime import build
from projections.runtime.errors import PoisonEvent
from projections.runtime.rebuild import Progress, RebuildRunning, build_checkpoint, rebuild
from projections.runtime.replay import replay
from projections.runtime.tables import TableRows
from projections.servers import get_server

_KEYS = {
    "instances": "id",
    "servers": "id",
    "operations": "id",
    "health": "instance_id",
    "audit_log": "position",
    "audit_subjects": "stream_id",
}


async def _snapshot(conn: AsyncConnection[Any]) -> dict[str, list[Any]]:
    tables: dict[str, list[Any]] = {}
    for table, key in _KEYS.items():
        cur = await conn.execute(f"SELECT to_jsonb(t) FROM {table} t ORDER BY {key}".encode())
        tables[table] = [row[0] for row in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND tablename = ANY(%s) ORDER BY indexname",
        (list(_KEYS),),
    )
    tables["indexes"] = await cur.fetchall()
    return tables


async def _everything(store: EventStore) -> None:
    await busy_log(store, instances=50, restarts=3)
    server_id = await register_server(store)
    instance_id, _ = await create_instance(store, server_id=server_id)
    await observe(store, instance_id)
    op = new_id()
    started = OperationStarted(
        operation_id=op, type="provision", instance_id=instance_id, server_id=server_id, worker="w"
    )
    await store.append(operation_stream(op), NO_STREAM, [started], meta())


async def test_a_rebuild_produces_the_read_model_it_replaces_row_by_row(
    pool: Pool, store: EventStore
):
    await _everything(store)
    await catch_up(pool)
    async with pool.connection() as conn:
        before = await _snapshot(conn)
    projections = build_projections(build_registry())
    seen: list[Progress] = []

    for name in NAMES:
        await rebuild(pool, projections[name], batch_size=100, on_progress=seen.append)

    async with pool.connection() as conn:
        after = await _snapshot(conn)
        cur = await conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
        leftovers = await cur.fetchall()
    assert after == before
    assert all(len(rows) > 0 for rows in before.values())
    assert leftovers == []
    assert {p.phase for p in seen} == {"building", "indexing", "swapping", "done"}
    assert [p.projection for p in seen if p.phase == "done"] == list(NAMES)


# Stream ids sort bytewise under a C collation; under others a rebuild goes in log order.
@pytest.mark.parametrize("bytewise", [True, False], ids=["stream order", "log order"])
async def test_a_rebuild_holding_few_rows_in_memory_produces_the_same_read_model(
    pool: Pool, store: EventStore, monkeypatch: pytest.MonkeyPatch, bytewise: bool
):
    await _everything(store)
    await catch_up(pool)
    async with pool.connection() as conn:
        before = await _snapshot(conn)

    async def sorts_bytewise(conn: Any) -> bool:
        return bytewise

    monkeypatch.setattr(build, "stream_ids_sort_bytewise", sorts_bytewise)
    # Rows are written out and loaded back all the time (RowBuffer's spill).
    monkeypatch.setattr(build, "ROWS_HELD", 3)
    projections = build_projections(build_registry())

    for name in NAMES:
        await rebuild(pool, projections[name], batch_size=7)

    async with pool.connection() as conn:
        after = await _snapshot(conn)
    assert after == before


async def test_a_rebuild_folds_each_stream_once_however_many_streams_the_log_interleaves(
    pool: Pool, store: EventStore, monkeypatch: pytest.MonkeyPatch
):
    created = [await create_instance(store) for _ in range(12)]
    for instance_id, _ in created:  # every stream again, after all the others
        renamed = InstanceUpdated(instance_id=instance_id, name="renamed", updated_at=NOW)
        await store.append(instance_stream(instance_id), ANY, [renamed], meta())
    await catch_up(pool)
    async with pool.connection() as conn:
        before = await _snapshot(conn)
    loaded: list[str] = []

    async def load_spy(self: Any, conn: Any, stream_ids: Any) -> dict[str, Any]:
        loaded.extend(stream_ids)
        return await loads[type(self)](self, conn, stream_ids)

    loads = {TableRows: TableRows.load, SubjectRows: SubjectRows.load}
    for kind in loads:
        monkeypatch.setattr(kind, "load", load_spy)
    monkeypatch.setattr(build, "ROWS_HELD", 3)
    projections = build_projections(build_registry())

    for name in ("instances", "audit"):
        await rebuild(pool, projections[name], batch_size=7)

    async with pool.connection() as conn:
        after = await _snapshot(conn)
    # Stream after stream: no row was ever written out and needed again while building.
    assert loaded == []
    assert after == before


async def test_a_rebuild_gives_back_docker_s_restarts_and_public_host_ports(
    pool: Pool, store: EventStore
):
    server_id = new_id()
    public = msgspec.structs.replace(server_registered(server_id), public_host_ports=True)
    await store.append(server_stream(server_id), NO_STREAM, [public], meta())
    instance_id, _ = await create_instance(store, server_id=server_id)
    calm = health_observed(instance_id, at=NOW)
    crashed = msgspec.structs.replace(
        health_observed(instance_id, at=NOW + timedelta(minutes=1)),
        restart_count=1,
        window=msgspec.structs.replace(calm.window, restarts=1),
    )
    await store.append(health_stream(instance_id), ANY, [calm, crashed], meta())
    await catch_up(pool)
    before = await get_instance(pool, "org-a", instance_id)
    projections = build_projections(build_registry())

    for name in ("servers", "health", "instances"):
        await rebuild(pool, projections[name], batch_size=100)

    after = await get_instance(pool, "org-a", instance_id)
    server = await get_server(pool, "org-a", server_id)
    assert after is not None
    assert server is not None
    assert after == before
    assert (after.restart_count, after.last_restart_at) == (1, NOW + timedelta(minutes=1))
    assert server.public_host_ports is True


async def test_reads_never_fail_nor_see_a_half_built_table_during_a_rebuild(
    pool: Pool, store: EventStore, database_url: str
):
    await busy_log(store, instances=300, restarts=4)
    await catch_up(pool, "instances")
    (first, *_), _ = await list_instances(
        pool, "org-a", server_id=None, status=None, limit=1, cursor=None
    )
    counts: list[int] = []
    rebuilt = asyncio.Event()

    async def read_until_rebuilt() -> None:
        while not rebuilt.is_set():
            seen, cursor = 0, None
            while True:
                page, cursor = await list_instances(
                    pool, "org-a", server_id=None, status=None, limit=100, cursor=cursor
                )
                seen += len(page)
                if cursor is None:
                    break
            counts.append(seen)
            assert await get_instance(pool, "org-a", first.id) is not None

    async with projections_running(pool, database_url, ("instances",)):
        readers = [asyncio.create_task(read_until_rebuilt()) for _ in range(3)]
        writing = asyncio.create_task(busy_log(store, instances=100, restarts=1))
        try:
            await rebuild(pool, build_projections(build_registry())["instances"], batch_size=200)
        finally:
            rebuilt.set()
        await asyncio.gather(*readers)
        await writing
        await catch_up(pool, "instances")

    assert len(counts) > 3
    assert min(counts) >= 300
    assert await differences_from_a_fresh_build(pool, "instances") == {"instances": 0}


async def test_a_rebuild_that_meets_a_poison_event_leaves_the_live_tables_alone(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    await catch_up(pool, "instances")
    orphan = new_id()
    poison = await store.append(
        instance_stream(orphan),
        NO_STREAM,
        [InstanceUpdated(instance_id=orphan, name="no creation", updated_at=NOW)],
        meta(),
    )
    await until_readable(pool, poison.position)

    with pytest.raises(PoisonEvent):
        await rebuild(pool, build_projections(build_registry())["instances"])

    assert await get_instance(pool, "org-a", instance_id) is not None
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'rebuild_instances'),"
            " (SELECT count(*) FROM checkpoints WHERE name = %s)",
            (build_checkpoint("instances"),),
        )
        assert await cur.fetchone() == (0, 0)


async def test_a_second_rebuild_of_the_same_projection_is_refused(pool: Pool, store: EventStore):
    from projections.runtime.rebuild import _lock

    await create_instance(store)
    async with pool.connection() as other:
        await other.execute("SELECT pg_advisory_lock(%s)", (_lock("instances"),))
        with pytest.raises(RebuildRunning):
            await rebuild(pool, build_projections(build_registry())["instances"])
        await other.execute("SELECT pg_advisory_unlock(%s)", (_lock("instances"),))


async def test_a_rebuild_clears_what_a_dead_rebuild_left_behind(pool: Pool, store: EventStore):
    instance_id, created = await create_instance(store)
    await until_readable(pool, created.position)
    async with pool.connection() as conn:
        await conn.execute("CREATE SCHEMA rebuild_instances")
        await conn.execute("CREATE TABLE rebuild_instances.instances (junk int)")
        await conn.execute(
            "INSERT INTO checkpoints (name, position) VALUES (%s, 999)",
            (build_checkpoint("instances"),),
        )

    await rebuild(pool, build_projections(build_registry())["instances"])

    assert await get_instance(pool, "org-a", instance_id) is not None


async def test_replay_repairs_the_rows_of_the_streams_in_the_range_only(
    pool: Pool, store: EventStore
):
    first, created = await create_instance(store, name="First")
    second, _ = await create_instance(store, name="Second", port=20010)
    await catch_up(pool, "instances", "audit")
    async with pool.connection() as conn:
        await conn.execute("UPDATE instances SET name = 'broken'")
        await conn.execute("DELETE FROM audit_log")
        before = await load_checkpoint(conn, "instances")
    projections = build_projections(build_registry())

    for name in ("instances", "audit"):
        await replay(pool, projections[name], start=created.positions[0], end=created.position)

    repaired = await get_instance(pool, "org-a", first)
    untouched = await get_instance(pool, "org-a", second)
    assert repaired is not None
    assert repaired.name == "First"
    assert untouched is not None
    assert untouched.name == "broken"
    entries, _ = await query_audit(pool, "org-a", AuditFilter(), 1, 10)
    assert [e.resource_id for e in entries] == [first]
    async with pool.connection() as conn:
        assert await load_checkpoint(conn, "instances") == before


async def test_replay_never_runs_ahead_of_the_checkpoint(pool: Pool, store: EventStore):
    instance_id, created = await create_instance(store, name="Old")
    await catch_up(pool, "instances")
    await store.append(
        instance_stream(instance_id),
        2,
        [InstanceUpdated(instance_id=instance_id, name="New", updated_at=NOW)],
        meta(),
    )

    applied = await replay(pool, build_projections(build_registry())["instances"])

    view = await get_instance(pool, "org-a", instance_id)
    assert applied == 2
    assert view is not None
    assert (view.name, view.version) == ("Old", created.version)
    await catch_up(pool, "instances")
    assert await differences_from_a_fresh_build(pool, "instances") == {"instances": 0}
