"""Advisory locks of one operation, across every worker process: what it works on (one
operation per instance, one validation per server at a time) and an SSH session slot of its
server (at most `maxSshSessions` sessions per server, whichever process opens them).

They live on a PostgreSQL session of the operation's own, never on a pooled connection: a
session-level lock would stay with a pooled connection after it went back to the pool. A
worker that dies loses the session, and PostgreSQL releases its locks at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import psycopg

from events.leader import lock_key

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """A lock stayed taken for longer than the operation may wait for it."""


class OperationLocks:
    def __init__(self, conninfo: str, poll_interval: float = 0.1) -> None:
        self._conninfo = conninfo
        self._poll = poll_interval
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> OperationLocks:
        self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()  # ends the session: every lock it held goes with it

    async def hold(self, subject: str, max_wait: float) -> None:
        """Wait until no other operation works on `subject` (e.g. `instance <id>`); held
        until the end of this one."""
        key = lock_key(f"odoofleet:{subject}")
        deadline = time.monotonic() + max_wait
        while not await self._try(key):
            if time.monotonic() > deadline:
                raise LockTimeout(f"{subject} stayed busy for {max_wait:g}s")
            await asyncio.sleep(self._poll)

    @contextlib.asynccontextmanager
    async def session(self, server_id: str, slots: int, max_wait: float) -> AsyncIterator[None]:
        """One of the server's `slots` session slots, for the length of one SSH command."""
        keys = [lock_key(f"odoofleet:server:{server_id}:ssh:{n}") for n in range(max(1, slots))]
        deadline = time.monotonic() + max_wait
        while True:
            for key in keys:
                if await self._try(key):
                    try:
                        yield
                    finally:
                        await self._unlock(key)
                    return
            if time.monotonic() > deadline:
                raise LockTimeout(f"no SSH session of server {server_id} free for {max_wait:g}s")
            await asyncio.sleep(self._poll)

    async def _try(self, key: int) -> bool:
        cur = await self._session().execute("SELECT pg_try_advisory_lock(%s)", (key,))
        row = await cur.fetchone()
        return bool(row and row[0])

    async def _unlock(self, key: int) -> None:
        try:
            await self._session().execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg.OperationalError as e:
            # The session is gone (PostgreSQL restarted) and its locks went with it. What ran
            # under the lock has finished: failing here would have it run again.
            log.warning("lock session lost (%s); its locks went with it", e)

    def _session(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise RuntimeError("OperationLocks is used outside its `async with`")
        return self._conn
