"""Connection pools for the event store: autocommit connections, opened explicitly."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

Pool = AsyncConnectionPool[AsyncConnection[Any]]


async def open_pool(
    conninfo: str, *, min_size: int = 1, max_size: int = 10, checkout_timeout: float = 5.0
) -> Pool:
    """An opened pool of autocommit connections (each statement is its own transaction
    unless the caller opens one with `conn.transaction()`). Waiting for a connection gives
    up after `checkout_timeout` seconds (PoolTimeout, an OperationalError): during an outage
    a caller learns it in seconds rather than half a minute."""
    pool: Pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        open=False,
        timeout=checkout_timeout,
    )
    await pool.open(wait=True, timeout=30)
    return pool
