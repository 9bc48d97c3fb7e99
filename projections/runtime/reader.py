"""What read functions accept: a connection the caller holds, or the pool to borrow one from."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

Reader: TypeAlias = AsyncConnection[Any] | AsyncConnectionPool[Any]


@asynccontextmanager
async def connection(reader: Reader) -> AsyncIterator[AsyncConnection[Any]]:
    if isinstance(reader, AsyncConnection):
        yield reader
    else:
        async with reader.connection() as conn:
            yield conn


async def fetch_text(reader: Reader, query: bytes, params: Any) -> str | None:
    """The single text value a query returns (JSON, in the read functions), or None."""
    async with connection(reader) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    return None if row is None else row[0]
