"""Zero-downtime rebuild: build a projection into new tables from position 0, catch up to
live, then swap the new tables in, all in ONE transaction, while the API reads the old ones.

The new tables are filled in a schema of their own (`rebuild_<name>`, first on the search
path, so the projection's SQL is unchanged). The swap holds the live checkpoint's row lock,
which makes the live projector wait between two batches; it brings the new tables up to at
least the live checkpoint, drops the old tables and moves the new ones into their place. A
reader waits for the swap for a moment and then reads the new table; it never fails and
never sees a half-built table.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from events.checkpoints import load_checkpoint, save_checkpoint
from events.leader import lock_key
from events.log_reads import count_all
from projections.runtime.build import Build
from projections.runtime.clone import clone_tables, make_logged, quoted
from projections.runtime.projection import Projection
from projections.runtime.projector import CheckpointMoved, Projector, lock_checkpoint
from projections.runtime.status import record_rebuilt

log = logging.getLogger(__name__)

Phase = Literal["building", "indexing", "swapping", "done"]
_SWAP_ATTEMPTS: Final = 5
# A reader holding the old table longer than this makes the swap let go and try again,
# instead of queueing every other reader behind it.
_SWAP_LOCK_TIMEOUT: Final = b"SET LOCAL lock_timeout = '3s'"


@dataclass(frozen=True, slots=True)
class Progress:
    """Events read of `total`; while building in stream order (build.py) only the
    projection's own events are read, so `total` (the whole log) is then an upper bound."""

    projection: str
    phase: Phase
    done: int
    total: int


class RebuildRunning(RuntimeError):
    """Another rebuild of the same projection is under way."""


def build_schema(name: str) -> str:
    return f"rebuild_{name}"


def build_checkpoint(name: str) -> str:
    return f"{name}:rebuild"


def is_build_checkpoint(checkpoint: str) -> bool:
    return checkpoint.endswith(":rebuild")


async def rebuild(
    pool: AsyncConnectionPool[Any],
    projection: Projection,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[Progress], None] | None = None,
) -> None:
    """Rebuild `projection` without downtime, on two connections of `pool` (the second
    reads ahead while the build writes). Raises RebuildRunning, or PoisonEvent (the live
    tables are then untouched)."""
    name = projection.name
    report = on_progress or (lambda _: None)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_lock(name),))
        row = await cur.fetchone()
        if row is None or not row[0]:
            raise RebuildRunning(f"projection {name!r} is being rebuilt by another process")
        try:
            await _rebuild(pool, conn, projection, batch_size, report)
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                await _clean_up(conn, name)
            raise
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_lock(name),))


def _lock(name: str) -> int:
    return lock_key(f"odoofleet:rebuild:{name}")


async def _rebuild(
    pool: AsyncConnectionPool[Any],
    conn: AsyncConnection[Any],
    projection: Projection,
    batch_size: int,
    report: Callable[[Progress], None],
) -> None:
    name = projection.name
    cur = await conn.execute("SELECT current_schema()")
    row = await cur.fetchone()
    assert row is not None
    live, total = str(row[0]), await count_all(conn)
    await _clean_up(conn, name)
    async with conn.transaction():
        await conn.execute(f"CREATE SCHEMA {await quoted(conn, build_schema(name))}".encode())
        indexes = await clone_tables(conn, projection.tables, live, build_schema(name))
        await load_checkpoint(conn, build_checkpoint(name))
    checkpoint, search_path = build_checkpoint(name), (build_schema(name), live)
    done = 0

    def built(count: int) -> None:
        nonlocal done
        done += count
        report(Progress(name, "building", done, max(total, done)))

    build = Build(projection, checkpoint=checkpoint, search_path=search_path, batch_size=batch_size)
    async with pool.connection() as reader:
        await build.run(conn, reader, built)
    report(Progress(name, "indexing", done, done))
    # SET LOGGED rewrites a table with the indexes it has: build the others after it, once.
    await make_logged(conn, projection.tables, build_schema(name))
    for statement in indexes:
        await conn.execute(statement.encode())
    for table in projection.tables:
        await conn.execute(f"ANALYZE {await quoted(conn, build_schema(name), table)}".encode())
    # What was appended meanwhile, and the swap, go the live way: few events, short batches.
    projector = Projector(
        projection, checkpoint=checkpoint, search_path=search_path, batch_size=batch_size
    )
    while batch := await projector.step(conn):
        done += len(batch)
    report(Progress(name, "swapping", done, done))
    await _swap(conn, projector, live)
    report(Progress(name, "done", done, done))


async def _swap(conn: AsyncConnection[Any], projector: Projector, live: str) -> None:
    for attempt in range(1, _SWAP_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await conn.execute(_SWAP_LOCK_TIMEOUT)
                await _swap_once(conn, projector, live)
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == _SWAP_ATTEMPTS:
                raise
            log.warning("rebuild of %s: readers hold the tables; retrying the swap", live)


async def _swap_once(conn: AsyncConnection[Any], projector: Projector, live: str) -> None:
    projection = projector.projection
    name = projection.name
    projector.forget_position()  # an earlier attempt's steps were rolled back
    current = await lock_checkpoint(conn, name)
    # Up to the newest event: the new tables must not be behind what readers have seen.
    while await projector.step(conn):
        pass
    await projector.save(conn)
    built = await load_checkpoint(conn, projector.checkpoint)
    if built < current:
        raise CheckpointMoved(f"the rebuild of {name} ended behind its live checkpoint")
    old = [await quoted(conn, live, table) for table in projection.tables]
    await conn.execute(f"LOCK TABLE {', '.join(old)} IN ACCESS EXCLUSIVE MODE".encode())
    target = await quoted(conn, live)
    for table, old_table in zip(projection.tables, old, strict=True):
        await conn.execute(f"DROP TABLE {old_table}".encode())
        new_table = await quoted(conn, build_schema(name), table)
        await conn.execute(f"ALTER TABLE {new_table} SET SCHEMA {target}".encode())
    await save_checkpoint(conn, name, current, built)
    await conn.execute("DELETE FROM checkpoints WHERE name = %s", (projector.checkpoint,))
    await conn.execute(f"DROP SCHEMA {await quoted(conn, build_schema(name))}".encode())
    await record_rebuilt(conn, name)


async def _clean_up(conn: AsyncConnection[Any], name: str) -> None:
    """Forget a build that did not finish (this one, or one of a process that died)."""
    schema = await quoted(conn, build_schema(name))
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
    await conn.execute("DELETE FROM checkpoints WHERE name = %s", (build_checkpoint(name),))
