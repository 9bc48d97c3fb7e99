"""One active process per role: a session-level advisory lock held on its own connection.

If the holder dies, PostgreSQL ends its session and releases the lock, so a standby that
keeps trying takes over within its retry interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from typing import Any

import psycopg


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for `name` (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


class LeaderLock:
    def __init__(self, conninfo: str, name: str, retry_interval: float = 1.0) -> None:
        self.name = name
        self._conninfo = conninfo
        self._key = lock_key(name)
        self._retry = retry_interval
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
        row = await cur.fetchone()
        if row is not None and row[0]:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until the lock is ours (True) or `stop` is set (False)."""
        while stop is None or not stop.is_set():
            try:
                if await self.try_acquire():
                    return True
            except psycopg.OperationalError:
                pass
            if stop is None:
                await asyncio.sleep(self._retry)
            else:
                try:
                    await asyncio.wait_for(stop.wait(), self._retry)
                except TimeoutError:
                    continue
        return False

    async def still_held(self) -> bool:
        """False once the lock's connection is gone (the lock went with it)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            await self._conn.execute("SELECT 1")
        except psycopg.OperationalError:
            await self.release()
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
                await conn.close()
