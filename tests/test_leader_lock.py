"""A leader lock's standby: it asks again on one connection, takes over when the holder lets
go, and leaves nothing open when it stops."""

from __future__ import annotations

import asyncio

import psycopg
from psycopg.conninfo import make_conninfo
from waiting import eventually

from events.leader import LeaderLock


class CountedLock(LeaderLock):
    """A LeaderLock that counts its attempts."""

    attempts = 0

    async def try_acquire(self) -> bool:
        self.attempts += 1
        return await super().try_acquire()


async def _ask(database_url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cur = await conn.execute(sql.encode())
        return await cur.fetchall()


async def _sessions_opened(database_url: str) -> int:
    rows = await _ask(
        database_url,
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()",
    )
    return int(str(rows[0][0]))


async def _standby_backends(database_url: str, application: str) -> int:
    rows = await _ask(
        database_url,
        f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application}'",
    )
    return int(str(rows[0][0]))


async def test_a_standby_asks_on_one_connection_and_takes_over(database_url: str) -> None:
    holder = LeaderLock(database_url, "test:leader")
    standby = CountedLock(
        make_conninfo(database_url, application_name="standby"), "test:leader", 0.01
    )
    assert await holder.try_acquire()
    before = await _sessions_opened(database_url)
    stop = asyncio.Event()
    waiting = asyncio.create_task(standby.acquire(stop))

    await eventually(lambda: standby.attempts >= 20, message="20 attempts")

    # The standby's one connection and this query's own; a connection per attempt made 20.
    assert await _sessions_opened(database_url) - before <= 2
    assert not waiting.done()
    await holder.release()
    await eventually(waiting.done, message="the standby took over")
    assert waiting.result() is True
    assert standby.held
    await standby.release()
    assert await _standby_backends(database_url, "standby") == 0


async def test_a_standby_stopped_while_waiting_leaves_no_connection(database_url: str) -> None:
    holder = LeaderLock(database_url, "test:leader")
    standby = CountedLock(
        make_conninfo(database_url, application_name="stopped"), "test:leader", 0.01
    )
    assert await holder.try_acquire()
    stop = asyncio.Event()
    waiting = asyncio.create_task(standby.acquire(stop))
    await eventually(lambda: standby.attempts >= 2, message="the standby asked")

    stop.set()

    assert await waiting is False
    assert await _standby_backends(database_url, "stopped") == 0
    await holder.release()
