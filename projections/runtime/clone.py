"""Empty copies of read-model tables in another schema, for a rebuild to fill.

The copies take their definitions from the live tables (the migrations stay the one place
tables are spelled). Keys come first, because the upserts need them while the copy fills;
the other indexes are built once it is full, which is much faster than keeping them up to
date row by row. Indexes keep their names: after the swap they are exactly the old ones.

The copies are UNLOGGED while they fill: a rebuild rewrites each row many times, and none
of those versions needs the WAL. `make_logged` writes the finished tables to the WAL once,
before they are swapped in (a crash before that only loses the rebuild, which starts over);
it rewrites each table with the indexes it has, so the other indexes are built after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection

_LIKE = (
    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING IDENTITY"
    " INCLUDING STORAGE INCLUDING COMMENTS"
)

_KEYS = (
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname"
)

_OTHER_INDEXES = (
    "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i"
    " WHERE i.indrelid = %s::regclass"
    " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    " ORDER BY i.indexrelid"
)


async def quoted(conn: AsyncConnection[Any], *names: str) -> str:
    """`a.b` quoted the way PostgreSQL prints names (as pg_get_indexdef does)."""
    cur = await conn.execute(
        "SELECT string_agg(quote_ident(n), '.' ORDER BY o) FROM unnest(%s::text[])"
        " WITH ORDINALITY AS t(n, o)",
        (list(names),),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def clone_tables(
    conn: AsyncConnection[Any], tables: Iterable[str], live: str, build: str
) -> list[str]:
    """Create empty copies of `tables` from schema `live` in schema `build`, with their keys.
    Returns the statements that create their other indexes, to run once they are filled."""
    deferred: list[str] = []
    for table in tables:
        source, target = await quoted(conn, live, table), await quoted(conn, build, table)
        await conn.execute(f"CREATE UNLOGGED TABLE {target} (LIKE {source} {_LIKE})".encode())
        cur = await conn.execute(_KEYS, (source,))
        for name, definition in await cur.fetchall():
            constraint = await quoted(conn, name)
            await conn.execute(
                f"ALTER TABLE {target} ADD CONSTRAINT {constraint} {definition}".encode()
            )
        cur = await conn.execute(_OTHER_INDEXES, (source,))
        for (definition,) in await cur.fetchall():
            deferred.append(definition.replace(f" ON {source} ", f" ON {target} ", 1))
    return deferred


async def make_logged(conn: AsyncConnection[Any], tables: Iterable[str], schema: str) -> None:
    for table in tables:
        await conn.execute(f"ALTER TABLE {await quoted(conn, schema, table)} SET LOGGED".encode())
