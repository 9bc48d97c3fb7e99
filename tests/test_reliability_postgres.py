"""PostgreSQL stopped under the API: 503 problem+json while down, 200 again once it is back."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pgserver
import pytest_asyncio
from api_fixtures import TEST_HOST_PORTS, client_of, mint, server_body, serving
from waiting import eventually

from api.app import create_app
from events.migrate import migrate
from events.pool import open_pool
from odoofleet.settings import Settings

# A request that finds no connection waits for the pool's 30 s timeout before its 503.
ANSWER_WITHIN = 40.0


@pytest_asyncio.fixture
async def own_postgres() -> AsyncIterator[pgserver.PostgresServer]:
    """An embedded PostgreSQL of this test's own, which it may stop and start again."""
    data = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
    server = await asyncio.to_thread(pgserver.get_server, data, cleanup_mode="delete")
    yield server
    await asyncio.to_thread(server.cleanup)


def _stop(server: pgserver.PostgresServer) -> None:
    pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


async def _ask(client: httpx.AsyncClient, i: int) -> httpx.Response:
    if i % 2:
        request = client.post("/api/servers", json=server_body(name=f"web-{i}"))
    else:
        request = client.get("/api/servers")
    return await asyncio.wait_for(request, ANSWER_WITHIN)


def _is_unavailable(answer: httpx.Response) -> bool:
    problem = answer.headers["content-type"].startswith("application/problem+json")
    return answer.status_code == 503 and problem


async def test_the_api_answers_503_while_postgres_is_down_and_recovers_without_restart(
    own_postgres: pgserver.PostgresServer, settings: Settings
):
    url = own_postgres.get_uri()
    await migrate(url)
    settings = msgspec.structs.replace(settings, database_url=url)
    pool = await open_pool(url, min_size=1, max_size=5)
    app = create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    try:
        async with serving(app), client_of(app, mint(settings)) as client:
            assert (await _ask(client, 0)).status_code == 200

            await asyncio.to_thread(_stop, own_postgres)
            during = await asyncio.gather(*(_ask(client, i) for i in range(20)))
            await asyncio.to_thread(own_postgres.ensure_postgres_running)

            async def answers_again() -> bool:
                return (await _ask(client, 0)).status_code == 200

            await eventually(answers_again, timeout=30, interval=0.2, message="200 again")
            assert (await _ask(client, 1)).status_code == 201
    finally:
        await pool.close()
    assert [a.text for a in during if not _is_unavailable(a)] == []
