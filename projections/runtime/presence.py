"""Who runs a projection, seen from PostgreSQL: the leader holds the projection's advisory
lock; every runner (leader or standby) holds a shared "runner" lock on one connection per
process. Sessions that die drop their locks, so `projections status` never shows a ghost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from events.leader import lock_key

log = logging.getLogger(__name__)


def leader_lock_name(projection: str) -> str:
    return f"odoofleet:projection:{projection}"


def runner_lock_name(projection: str) -> str:
    return f"odoofleet:projection-runner:{projection}"


def labelled(conninfo: str, projection: str) -> str:
    """`conninfo` naming this process, so status can tell which one leads."""
    label = f"odoofleet {projection} {socket.gethostname()}:{os.getpid()}"
    return make_conninfo(conninfo, application_name=label[:63])


def advisory_ids(name: str) -> tuple[int, int]:
    """(classid, objid) of the bigint advisory lock for `name`, as pg_locks shows them."""
    key = lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    return key >> 32, key & 0xFFFF_FFFF


class Presence:
    """Holds the shared runner lock of each projection this process runs."""

    def __init__(self, conninfo: str, projections: Iterable[str]) -> None:
        self._conninfo = make_conninfo(conninfo, application_name="odoofleet runners")
        self._keys = [lock_key(runner_lock_name(name)) for name in projections]
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._hold(), name="projection-presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _hold(self) -> None:
        while True:
            try:
                conn: psycopg.AsyncConnection[Any]
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    for key in self._keys:
                        await conn.execute("SELECT pg_advisory_lock_shared(%s)", (key,))
                    while True:
                        await asyncio.sleep(5.0)
                        await conn.execute("SELECT 1")
            except psycopg.OperationalError as e:
                log.warning("projection presence connection lost (%s); reconnecting", e)
                await asyncio.sleep(1.0)
