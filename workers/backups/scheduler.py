"""The backup scheduler: one leader across every worker process (a PostgreSQL advisory
lock, as the health observer's) asks for each schedule's backup when it is due, and lets
expire what the schedule's retention no longer keeps.

Exactly once per due time: the backup's id and operation derive from (instance, due time),
so a request sent twice (a new leader after a crash, two leaders for a moment) decides
nothing the second time; the last due time asked for is kept per instance, and only the
latest due time counts, so windows missed while no worker ran become one backup."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import msgspec
import psycopg
from psycopg_pool import PoolTimeout

from commands import backup
from commands.backup_retention import expired, latest_due
from commands.instance_state import Abandoned, Absent, Removed, Removing
from commands.instance_state import fold as instance_fold
from commands.runner import execute_command, load
from events.backup import backup_stream
from events.instance import instance_stream
from events.leader import LeaderLock
from events.metadata import EventMetadata, system_actor
from events.pool import Pool
from events.secrets import Vault
from events.store import EventStore
from projections.backups import ScheduleView, all_schedules, kept_backups

LEADER_LOCK: Final = "odoofleet:backup-scheduler"
_IDS: Final = uuid.UUID("5c4e1d2a-8b7f-4e3c-9a1d-2f6b8c0e4d7a")
_LAST_DUE: Final = "SELECT last_due_at FROM backup_schedule_runs WHERE instance_id = %s"
_SET_DUE: Final = (
    "INSERT INTO backup_schedule_runs (instance_id, last_due_at) VALUES (%s, %s)"
    " ON CONFLICT (instance_id) DO UPDATE SET last_due_at = EXCLUDED.last_due_at"
    " WHERE backup_schedule_runs.last_due_at < EXCLUDED.last_due_at"
)

log = logging.getLogger(__name__)


class SchedulerConfig(msgspec.Struct, frozen=True, kw_only=True):
    interval: float = 30.0  # how often schedules are looked at (cron has minutes)


class BackupScheduler:
    def __init__(
        self,
        pool: Pool,
        store: EventStore,
        vault: Vault,
        *,
        worker: str,
        config: SchedulerConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config or SchedulerConfig()
        self._pool, self._store, self._vault = pool, store, vault
        self._worker = worker
        self._clock = clock

    async def run(self, stop: asyncio.Event, conninfo: str) -> None:
        """Schedule as the leader, or stand by, until `stop` is set."""
        lock = LeaderLock(conninfo, LEADER_LOCK)
        while not stop.is_set():
            if not await lock.acquire(stop):
                return
            log.info("backup scheduler %s: leading", self._worker)
            try:
                await self._lead(stop, lock)
            finally:
                await lock.release()

    async def _lead(self, stop: asyncio.Event, lock: LeaderLock) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except (psycopg.OperationalError, PoolTimeout) as e:
                log.warning("backup scheduler: database unavailable (%s)", e)
            if not await lock.still_held():
                log.error("backup scheduler %s: lost its leader lock", self._worker)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.interval)

    async def tick(self) -> list[str]:
        """One look at every schedule: the backups asked for now (their ids)."""
        now = self._clock()
        requested = []
        for schedule in await all_schedules(self._pool):
            if not await self._instance_alive(schedule):
                continue
            backup_id = await self._request_if_due(schedule, now)
            if backup_id is not None:
                requested.append(backup_id)
            await self._expire(schedule)
        return requested

    async def _instance_alive(self, schedule: ScheduleView) -> bool:
        state = (
            await load(self._store, instance_stream(schedule.instance_id), instance_fold)
        ).state
        return not isinstance(state, Absent | Removing | Abandoned | Removed)

    async def _request_if_due(self, schedule: ScheduleView, now: datetime) -> str | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_LAST_DUE, (schedule.instance_id,))).fetchone()
        since = max(schedule.set_at, row[0]) if row is not None else schedule.set_at
        due = latest_due(schedule.cron, schedule.timezone, now, since)
        if due is None:
            return None
        key = f"{schedule.instance_id}/{due.astimezone(UTC).isoformat()}"
        backup_id = str(uuid.uuid5(_IDS, f"{key}/backup"))
        stream_id = backup_stream(backup_id)
        data_key = base64.b64encode(os.urandom(32)).decode()
        command = backup.RequestBackup(
            backup_id=backup_id,
            instance_id=schedule.instance_id,
            operation_id=str(uuid.uuid5(_IDS, f"{key}/operation")),
            destination_id=schedule.destination_id,
            reason="scheduled",
            data_key=await self._vault.seal(stream_id, data_key),
            due_at=due.astimezone(UTC),
        )
        outcome = await execute_command(
            self._store, stream_id, backup.fold, backup.decide, command, now,
            self._metadata(schedule, key), idempotency_key=f"{key}/requested",
        )  # fmt: skip
        async with self._pool.connection() as conn:
            await conn.execute(_SET_DUE, (schedule.instance_id, due))
        if not outcome.events:
            return None  # asked for before (another leader, or before a restart)
        log.info("backup scheduler: %s due at %s for %s", backup_id, due, schedule.instance_id)
        return backup_id

    async def _expire(self, schedule: ScheduleView) -> None:
        """Scheduled backups the retention lets go are deleted, each as its own operation
        (BackupDeletionRequested, expired); manual, safety and final backups stay until
        deleted."""
        kept = [
            (view.id, view.completed_at)
            for view in await kept_backups(self._pool, schedule.instance_id)
            if view.reason == "scheduled" and view.completed_at is not None
        ]
        for backup_id in expired(
            kept,
            schedule.timezone,
            keep_daily=schedule.keep_daily,
            keep_weekly=schedule.keep_weekly,
            keep_monthly=schedule.keep_monthly,
        ):
            command = backup.DeleteBackup(
                operation_id=str(uuid.uuid5(_IDS, f"{backup_id}/expire")), expired=True
            )
            with contextlib.suppress(backup.BackupBusy, backup.BackupNotFound):
                await execute_command(
                    self._store, backup_stream(backup_id), backup.fold, backup.decide, command,
                    self._clock(), self._metadata(schedule, f"{backup_id}/expire"),
                )  # fmt: skip

    def _metadata(self, schedule: ScheduleView, correlation: str) -> EventMetadata:
        return EventMetadata(
            actor=system_actor(self._worker),
            org_id=schedule.org_id,
            correlation_id=str(uuid.uuid5(_IDS, correlation)),
        )
