"""Builders of real events for projection tests, and helpers that run the projectors."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import builders
import pytest_asyncio
from builders import meta
from waiting import eventually

from events.catalog import build_registry
from events.checkpoints import load_checkpoint
from events.health import HealthObserved, HealthStatus, HealthWindow, health_stream
from events.instance import (
    ActionRequested,
    ControlAction,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRestarted,
    InstanceSettings,
    InstanceUpdated,
    ProvisioningRequested,
    instance_stream,
)
from events.metadata import EventMetadata
from events.pool import Pool
from events.registry import DomainEvent
from events.secrets import Sealed
from events.server import ServerRegistered, server_stream
from events.store import ANY, NO_STREAM, AppendResult, Checkpoint, EventStore, NewEvents
from projections.catalog import build_projections, select
from projections.run import run_projections
from projections.runtime.clone import clone_tables
from projections.runtime.projector import Projector

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = InstanceSettings(
    workers=2,
    max_cron_threads=1,
    limit_memory_hard=2_684_354_560,
    limit_memory_soft=2_147_483_648,
    limit_time_cpu=600,
    limit_time_real=1200,
    log_level="info",
)


def new_id() -> str:
    return str(uuid.uuid4())


def instance_created(
    instance_id: str,
    *,
    server_id: str = "srv-1",
    name: str = "Acme",
    env_vars: dict[str, Sealed] | None = None,
    created_at: datetime = NOW,
    port: int = 20000,
) -> InstanceCreated:
    slug = f"acme-{instance_id[:8]}"
    return InstanceCreated(
        instance_id=instance_id,
        name=name,
        slug=slug,
        server_id=server_id,
        project_id=None,
        template_id=None,
        branch="main",
        environment_type="development",
        odoo_version="18.0",
        odoo_edition="community",
        addons_path=None,
        env_vars=env_vars or {},
        auto_subdomain=f"{slug}.odoo.localhost",
        http_port=8069,
        longpolling_port=8072,
        http_port_host=port,
        longpolling_port_host=port + 1,
        settings=SETTINGS,
        mcp_write_enabled=False,
        db_name=slug.replace("-", "_"),
        admin_password=Sealed("v1:admin"),
        db_password=Sealed("v1:db"),
        created_at=created_at,
    )


def server_registered(server_id: str, name: str = "box-1") -> ServerRegistered:
    return builders.server_registered(
        server_id=server_id, name=name, ssh_user="odoo", created_at=NOW
    )


def health_observed(
    instance_id: str, status: HealthStatus = "healthy", at: datetime = NOW
) -> HealthObserved:
    return HealthObserved(
        instance_id=instance_id,
        server_id="srv-1",
        status=status,
        container_state="running",
        http_status=200,
        response_time_ms=12.5,
        restart_count=0,
        oom_killed=False,
        memory_bytes=500_000_000,
        memory_limit_bytes=2_000_000_000,
        cpu_percent=3.5,
        message="ok",
        observed_at=at,
        window=HealthWindow(
            started_at=at,
            probes=3,
            failures=0,
            latency_p50_ms=10.0,
            latency_p95_ms=14.0,
            latency_max_ms=15.0,
            restarts=0,
            oom_kills=0,
            peak_memory_bytes=None,
        ),
    )


async def create_instance(
    store: EventStore, metadata: EventMetadata | None = None, **fields: Any
) -> tuple[str, AppendResult]:
    """A new instance stream: InstanceCreated + ProvisioningRequested."""
    instance_id = fields.pop("instance_id", None) or new_id()
    created = instance_created(instance_id, **fields)
    requested = ProvisioningRequested(
        instance_id=instance_id, server_id=created.server_id, operation_id=new_id()
    )
    result = await store.append(
        instance_stream(instance_id), NO_STREAM, [created, requested], metadata or meta()
    )
    return instance_id, result


async def append_to_instance(
    store: EventStore, instance_id: str, *events: DomainEvent, metadata: EventMetadata | None = None
) -> AppendResult:
    return await store.append(instance_stream(instance_id), ANY, list(events), metadata or meta())


async def provision(store: EventStore, instance_id: str) -> AppendResult:
    return await append_to_instance(
        store,
        instance_id,
        InstanceProvisioned(instance_id=instance_id, operation_id=new_id(), active_color="blue"),
    )


async def request_action(
    store: EventStore, instance_id: str, action: ControlAction
) -> AppendResult:
    event = ActionRequested(instance_id=instance_id, action=action, operation_id=new_id())
    return await append_to_instance(store, instance_id, event)


async def register_server(store: EventStore, org: str = "org-a", name: str = "box-1") -> str:
    server_id = new_id()
    await store.append(
        server_stream(server_id), NO_STREAM, [server_registered(server_id, name)], meta(org)
    )
    return server_id


async def observe(store: EventStore, instance_id: str, status: HealthStatus = "healthy") -> None:
    await store.append(
        health_stream(instance_id), ANY, [health_observed(instance_id, status)], meta()
    )


async def catch_up(pool: Pool, *names: str, batch_size: int = 500, timeout: float = 30) -> int:
    """Apply the whole log to the named projections (all when none are named).

    The log may show its newest events a little later: readers only take events older than
    every open transaction of the cluster (other tests' databases included), so this waits
    until each projection has passed the newest event.
    """
    projections = select(build_projections(build_registry()), names or None)
    applied = 0
    deadline = time.monotonic() + timeout
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT tx_id::text::bigint, position FROM events"
            " ORDER BY tx_id DESC, position DESC LIMIT 1"
        )
        row = await cur.fetchone()
        newest = Checkpoint(*row) if row else Checkpoint()
        for projection in projections:
            projector = Projector(projection, batch_size=batch_size)
            reached = await load_checkpoint(conn, projector.checkpoint)
            while reached < newest:
                batch = await projector.step(conn)
                applied += len(batch)
                if batch:
                    reached = batch[-1].checkpoint
                    continue
                # Nothing to read yet, or another projector applied it meanwhile.
                await projector.save(conn)
                reached = await load_checkpoint(conn, projector.checkpoint)
                if reached >= newest:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{projection.name} did not reach {newest}")
                await asyncio.sleep(0.01)
    return applied


async def until_readable(pool: Pool, position: int, timeout: float = 30) -> None:
    """Wait until log readers may take the event at `position` (see catch_up)."""

    async def readable() -> bool:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT tx_id < pg_snapshot_xmin(pg_current_snapshot()) FROM events"
                " WHERE position = %s",
                (position,),
            )
            row = await cur.fetchone()
        return row is not None and bool(row[0])

    await eventually(readable, timeout, message=f"event {position} readable")


def lifecycle(instance_id: str, restarts: int) -> list[DomainEvent]:
    """A busy instance: created, provisioned, renamed and restarted `restarts` times."""
    op = new_id()
    events: list[DomainEvent] = [
        instance_created(instance_id),
        ProvisioningRequested(instance_id=instance_id, server_id="srv-1", operation_id=op),
        InstanceProvisioned(instance_id=instance_id, operation_id=op, active_color="blue"),
    ]
    for n in range(restarts):
        events += [
            ActionRequested(instance_id=instance_id, action="restart", operation_id=op),
            InstanceRestarted(instance_id=instance_id, operation_id=op, restarted_at=NOW),
            InstanceUpdated(instance_id=instance_id, name=f"Acme {n}", updated_at=NOW),
        ]
    return events


async def busy_log(store: EventStore, instances: int, restarts: int) -> AppendResult:
    """`instances` busy instance streams (and health streams), appended in bulk."""
    ids = [new_id() for _ in range(instances)]
    results: list[AppendResult] = []
    for first in range(0, instances, 100):
        chunk = ids[first : first + 100]
        batch = [
            NewEvents(instance_stream(i), NO_STREAM, lifecycle(i, restarts), meta()) for i in chunk
        ]
        batch += [
            NewEvents(health_stream(i), NO_STREAM, [health_observed(i)], meta()) for i in chunk
        ]
        results += await store.append_batch(batch)
    return max(results, key=lambda r: r.position)


async def differences_from_a_fresh_build(pool: Pool, name: str) -> dict[str, int]:
    """Build projection `name` from position 0 into a schema of its own, up to the live
    checkpoint, and count per table the rows that differ from the live tables."""
    projection = build_projections(build_registry())[name]
    schema = f"fresh_{name}"
    async with pool.connection() as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
        await conn.execute(f"CREATE SCHEMA {schema}".encode())
        await clone_tables(conn, projection.tables, "public", schema)
        live = await load_checkpoint(conn, name)
        projector = Projector(
            projection, checkpoint=f"fresh:{name}", search_path=(schema, "public"), batch_size=2000
        )
        built = await load_checkpoint(conn, projector.checkpoint)
        while built < live:
            batch = await projector.step(conn)
            if batch:
                built = batch[-1].checkpoint
            else:
                await asyncio.sleep(0.01)
        assert built == live
        counts = {}
        for table in projection.tables:
            cur = await conn.execute(
                f"SELECT count(*) FROM ((TABLE public.{table} EXCEPT ALL TABLE {schema}.{table})"
                f" UNION ALL (TABLE {schema}.{table} EXCEPT ALL TABLE public.{table})) d".encode()
            )
            row = await cur.fetchone()
            counts[table] = row[0] if row else -1
        await conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())
    return counts


@contextlib.asynccontextmanager
async def projections_running(
    pool: Pool, conninfo: str, names: tuple[str, ...] | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """run_projections in the background for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_projections(pool, conninfo, stop, names))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


@pytest_asyncio.fixture
async def running_projections(pool: Pool, database_url: str) -> AsyncIterator[asyncio.Task[None]]:
    """Every projection running in the background (for API and end-to-end tests)."""
    async with projections_running(pool, database_url) as task:
        yield task
