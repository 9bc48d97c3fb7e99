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
        # A standby asks again on the connection it asked on: a new connection per attempt
        # forked a PostgreSQL backend every retry interval for every role a process stands
        # by for (22 a second for a standby `project`), and needs a free connection slot
        # exactly when the database may be short of them.
        self._asking: psycopg.AsyncConnection[Any] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def try_acquire(self) -> bool:
        if self.held:
            return True
        if self._asking is None or self._asking.closed:
            self._asking = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        conn = self._asking
        try:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
            row = await cur.fetchone()
        except psycopg.OperationalError:
            self._asking = None
            await conn.close()
            raise
        if row is not None and row[0]:
            self._conn, self._asking = conn, None
            return True
        return False

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Wait until the lock is ours (True) or `stop` is set (False)."""
        try:
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
        finally:
            if not self.held:  # stopped or cancelled while standing by
                await self._stop_asking()

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

    async def _stop_asking(self) -> None:
        if self._asking is not None:
            asking, self._asking = self._asking, None
            await asking.close()

    async def release(self) -> None:
        await self._stop_asking()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
                await conn.close()
