"""Projectors as real processes, and what `projections status` sees of them: a projector
SIGKILLed mid-batch, a standby taking over from a dead leader, two leaders racing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from projection_fixtures import (
    busy_log,
    catch_up,
    create_instance,
    differences_from_a_fresh_build,
    projections_running,
)
from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from waiting import eventually

from events.checkpoints import load_checkpoint
from events.pool import Pool
from events.store import EventStore
from projections.runtime.report import report
from projections.waiting import wait_for_position

ROOT = Path(__file__).resolve().parent.parent

# The production entry point in a process of its own: `run_projections` until killed.
PROJECTOR = """
import asyncio, sys
from events.pool import open_pool
from projections.run import run_projections

async def main():
    url, names = sys.argv[1], tuple(sys.argv[2].split(","))
    pool = await open_pool(url, max_size=4)
    await run_projections(pool, url, asyncio.Event(), names)

asyncio.run(main())
"""


def _spawn(conninfo: str, *names: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", PROJECTOR, conninfo, ",".join(names)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


async def test_a_projector_killed_mid_batch_leaves_a_read_model_equal_to_a_fresh_build(
    pool: Pool, store: EventStore, database_url: str
):
    last = await busy_log(store, instances=1000, restarts=10)
    label = "projector-to-kill"
    process = _spawn(make_conninfo(database_url, application_name=label), "instances", "audit")
    try:
        # Wait until, some batches in, one is inside a transaction that has written.
        async def mid_batch() -> bool:
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
                    " AND backend_xid IS NOT NULL"
                    " AND (SELECT min(position) FROM checkpoints) > 0",
                    (label,),
                )
                row = await cur.fetchone()
            return row is not None and row[0] > 0

        await eventually(mid_batch, timeout=60, interval=0.001, message="a batch in flight")
    finally:
        _kill(process)
    async with pool.connection() as conn:
        killed_at = [await load_checkpoint(conn, name) for name in ("instances", "audit")]

    await catch_up(pool, "instances", "audit")

    assert any(0 < c.position < last.position for c in killed_at), killed_at
    assert await differences_from_a_fresh_build(pool, "instances") == {"instances": 0}
    assert await differences_from_a_fresh_build(pool, "audit") == {
        "audit_log": 0,
        "audit_subjects": 0,
    }


async def test_a_standby_takes_over_within_seconds_when_the_leader_is_killed(
    pool: Pool, store: EventStore, database_url: str
):
    leader = _spawn(database_url, "instances")
    try:
        async with pool.connection() as conn:
            await eventually(
                lambda: _leader_pid_is(conn, leader.pid), timeout=30, message="subprocess leads"
            )
        async with projections_running(pool, database_url, ("instances",)):
            async with pool.connection() as conn:
                await eventually(lambda: _standbys(conn, 1), message="one standby")
            _, before = await create_instance(store)
            assert await wait_for_position(pool, before.position, timeout=10)

            _kill(leader)
            killed = time.monotonic()
            _, after = await create_instance(store, port=20010)

            assert await wait_for_position(pool, after.position, timeout=10)
            took_over = time.monotonic() - killed
            async with pool.connection() as conn:
                status = await report(conn, "instances")
    finally:
        if leader.poll() is None:
            _kill(leader)

    assert took_over < 5
    assert status.state == "running"
    assert status.leader is not None
    assert str(os.getpid()) in status.leader
    assert status.standbys == 0


async def _leader_pid_is(conn: AsyncConnection[Any], pid: int) -> bool:
    status = await report(conn, "instances")
    return status.leader is not None and status.leader.endswith(f":{pid}")


async def _standbys(conn: AsyncConnection[Any], count: int) -> bool:
    return (await report(conn, "instances")).standbys == count


async def test_two_runners_in_one_database_never_apply_an_event_twice(
    pool: Pool, store: EventStore, database_url: str
):
    await busy_log(store, instances=200, restarts=5)
    async with (
        projections_running(pool, database_url, ("instances", "audit")),
        projections_running(pool, database_url, ("instances", "audit")),
    ):
        await busy_log(store, instances=100, restarts=5)
        await catch_up(pool, "instances", "audit")

    assert await differences_from_a_fresh_build(pool, "instances") == {"instances": 0}
    assert await differences_from_a_fresh_build(pool, "audit") == {
        "audit_log": 0,
        "audit_subjects": 0,
    }


async def test_status_shows_a_stopped_projection_once_its_runners_are_gone(
    pool: Pool, database_url: str
):
    async with projections_running(pool, database_url, ("servers",)), pool.connection() as conn:
        await eventually(lambda: _state(conn, "servers", "running"), message="running")
    async with pool.connection() as conn:
        await eventually(lambda: _state(conn, "servers", "stopped"), message="stopped")
        assert (await report(conn, "health")).state == "stopped"


async def _state(conn: AsyncConnection[Any], name: str, state: str) -> bool:
    return (await report(conn, name)).state == state


async def test_lag_counts_the_events_a_projection_has_not_applied(pool: Pool, store: EventStore):
    await create_instance(store)
    await catch_up(pool, "instances")
    await create_instance(store, port=20010)

    async with pool.connection() as conn:
        status = await report(conn, "instances")

    assert status.lag_events == 2
    assert status.lag_seconds >= 0
