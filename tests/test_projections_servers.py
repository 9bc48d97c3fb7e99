"""The servers read model stores publicHostPorts, and migration 0007 fills it for servers
registered before the column existed."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import msgspec
import psycopg
import pytest_asyncio
from builders import meta
from projection_fixtures import catch_up, new_id, server_registered
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from events.migrate import available_migrations, migrate
from events.pool import Pool, open_pool
from events.server import ServerRegistered, server_stream
from events.store import NO_STREAM, EventStore
from projections.servers import get_server, list_servers

_BEFORE_THE_COLUMN = 6


def _public(server_id: str) -> ServerRegistered:
    return msgspec.structs.replace(server_registered(server_id), public_host_ports=True)


async def test_the_servers_table_stores_public_host_ports(pool: Pool, store: EventStore):
    public, private = new_id(), new_id()
    await store.append(server_stream(public), NO_STREAM, [_public(public)], meta())
    await store.append(
        server_stream(private), NO_STREAM, [server_registered(private, "box-2")], meta()
    )
    await catch_up(pool, "servers")

    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id, public_host_ports FROM servers")
        stored = dict(await cur.fetchall())
    shown = await get_server(pool, "org-a", public)

    assert stored == {public: True, private: False}
    assert shown is not None
    assert shown.public_host_ports is True
    assert {s.id: s.public_host_ports for s in await list_servers(pool, "org-a")} == stored


@pytest_asyncio.fixture
async def before_the_column(pg_server_url: str) -> AsyncIterator[str]:
    """A database migrated up to the migration before servers.public_host_ports."""
    name = f"odoofleet_m_{secrets.token_hex(6)}"
    params = conninfo_to_dict(pg_server_url)
    admin = make_conninfo(**(params | {"dbname": "postgres"}))
    url = make_conninfo(**(params | {"dbname": name}))
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in available_migrations():
            if migration.version <= _BEFORE_THE_COLUMN:
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
    yield url
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


async def test_migrating_fills_public_host_ports_from_each_registration(before_the_column: str):
    public, private = new_id(), new_id()
    pool = await open_pool(before_the_column, min_size=1, max_size=2)
    try:
        store = EventStore(pool)
        await store.append(server_stream(public), NO_STREAM, [_public(public)], meta())
        await store.append(server_stream(private), NO_STREAM, [server_registered(private)], meta())
        async with pool.connection() as conn:
            for server_id in (public, private):
                await conn.execute(
                    "INSERT INTO servers (id, org_id, name, host, port, ssh_user, auth_method,"
                    " status, max_ssh_sessions, created_at, updated_at, version)"
                    " VALUES (%s, 'org-a', 'box', '10.0.0.5', 22, 'odoo', 'key', 'pending', 4,"
                    " now(), now(), 1)",
                    (server_id,),
                )

        applied = await migrate(before_the_column)

        async with pool.connection() as conn:
            cur = await conn.execute("SELECT id, public_host_ports FROM servers")
            stored = dict(await cur.fetchall())
    finally:
        await pool.close()
    assert [m.version for m in applied][:1] == [_BEFORE_THE_COLUMN + 1]
    assert stored == {public: True, private: False}
