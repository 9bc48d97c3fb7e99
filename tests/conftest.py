"""Fixtures: a real PostgreSQL database per test and a real NATS JetStream namespace per test."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import psycopg
import pytest
import pytest_asyncio
from health_fixtures import health_world_fixture  # noqa: F401
from infra import NatsProcess, embedded_postgres_url, env_or_none
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from saga_fixtures import bare_fleet_fixture, fleet_fixture  # noqa: F401
from sshd_harness import ssh_runner_fixture, sshd_fixture  # noqa: F401

from events.catalog import build_registry
from events.migrate import migrate
from events.pool import Pool, open_pool
from events.registry import EventRegistry
from events.secrets import Vault
from events.store import EventStore
from odoofleet.settings import Settings, load_settings

pytest_plugins = ("api_fixtures",)

TEST_SECRET_KEY = "test-master-key-not-for-production"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    return env_or_none("DATABASE_URL") or embedded_postgres_url()


@pytest.fixture(scope="session")
def nats_server_url() -> Iterator[str]:
    url = env_or_none("NATS_URL")
    if url is not None:
        yield url
        return
    server = NatsProcess(Path(tempfile.mkdtemp(prefix="odoofleet-test-nats-")))
    server.start()
    yield server.url
    server.kill()


def _with_dbname(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@pytest_asyncio.fixture(scope="session")
async def template_db(pg_server_url: str) -> AsyncIterator[str]:
    """A migrated database that each test's database is copied from (CREATE … TEMPLATE)."""
    name = f"odoofleet_tpl_{secrets.token_hex(4)}"
    admin = _with_dbname(pg_server_url, "postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    await migrate(_with_dbname(pg_server_url, name))
    yield name
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest_asyncio.fixture
async def database_url(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"odoofleet_t_{secrets.token_hex(6)}"
    admin = _with_dbname(pg_server_url, "postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'.encode())
    yield _with_dbname(pg_server_url, name)
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(database_url, min_size=1, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def registry() -> EventRegistry:
    return build_registry()


@pytest.fixture
def store(pool: Pool) -> EventStore:
    return EventStore(pool)


@pytest.fixture
def vault(pool: Pool) -> Vault:
    return Vault(pool, TEST_SECRET_KEY)


@pytest_asyncio.fixture
async def settings(database_url: str, nats_server_url: str) -> AsyncIterator[Settings]:
    """Settings for this test: its own database, its own JetStream stream and subjects."""
    token = secrets.token_hex(4)
    settings = load_settings(
        {},
        database_url=database_url,
        nats_url=nats_server_url,
        secret_key=TEST_SECRET_KEY,
        jwt_secret="test-jwt-secret-long-enough-for-hs256-recommendations-" + token * 2,
        nats_stream=f"TEST_{token.upper()}",
        subject_prefix=f"t{token}",
        log_format="text",
        # The test servers (sshd, the sandbox, DockerSshd) listen on loopback, which a real
        # installation refuses as a server address (issue 13, SSRF).
        server_allowed_networks="127.0.0.0/8,::1/128",
        # Every test server is on loopback, where `<slug>.odoo.localhost` points: the tests of
        # auto subdomains turn this on (tests/test_domain_*.py).
        auto_domain_tls=False,
    )
    yield settings
    nc = await nats.connect(nats_server_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(settings.nats_stream)
    finally:
        await nc.close()
