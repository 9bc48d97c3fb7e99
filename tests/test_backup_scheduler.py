"""The backup scheduler against the real database: one backup per due time whoever asks (two
schedulers at once, or one restarted), windows missed while no worker ran collapse into one,
and retention expires scheduled backups as their own recorded deletions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from backup_requests import complete_backup, create_destination
from builders import meta
from projection_fixtures import catch_up, create_instance, provision

from commands import backup_schedule
from commands.runner import execute_command
from events.backup import BackupDeletionRequested, BackupRequested, schedule_stream
from events.pool import Pool
from events.secrets import Vault
from events.store import EventStore
from workers.backups.scheduler import BackupScheduler

SET_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def scheduled_instance(store: EventStore, vault: Vault, **keep: int) -> str:
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    destination = await create_destination(store, vault, "local", {"path": "/var/backups"})
    command = backup_schedule.SetSchedule(
        instance_id=instance_id, cron="0 3 * * *", timezone="UTC", destination_id=destination,
        keep_daily=keep.get("daily", 7), keep_weekly=keep.get("weekly", 0),
        keep_monthly=keep.get("monthly", 0),
    )  # fmt: skip
    await execute_command(
        store, schedule_stream(instance_id), backup_schedule.fold, backup_schedule.decide,
        command, SET_AT, meta(),
    )  # fmt: skip
    return instance_id


async def requested_backups(store: EventStore, pool: Pool) -> list[BackupRequested]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT stream_id FROM events WHERE event_type = 'BackupRequested' ORDER BY position"
        )
        streams = [row[0] for row in await cur.fetchall()]
    found = []
    for stream_id in streams:
        event = store.registry.decode_all(await store.read_stream(stream_id))[0]
        assert isinstance(event, BackupRequested)
        found.append(event)
    return found


async def test_two_schedulers_at_the_due_time_ask_for_one_backup(
    store: EventStore, vault: Vault, pool: Pool
) -> None:
    instance_id = await scheduled_instance(store, vault)
    await catch_up(pool)
    clock = Clock(datetime(2026, 12, 2, 3, 0, 20, tzinfo=UTC))
    one, two = (BackupScheduler(pool, store, vault, worker=f"w{n}", clock=clock) for n in (1, 2))

    first, second = await asyncio.gather(one.tick(), two.tick())

    found = await requested_backups(store, pool)
    assert len(found) == 1
    assert {*first, *second} == {found[0].backup_id}  # the same append, absorbed once
    assert (found[0].instance_id, found[0].reason) == (instance_id, "scheduled")
    assert found[0].due_at == datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    restarted = BackupScheduler(pool, store, vault, worker="w3", clock=clock)
    assert await restarted.tick() == []
    assert len(await requested_backups(store, pool)) == 1


async def test_windows_missed_while_no_worker_ran_become_one_backup(
    store: EventStore, vault: Vault, pool: Pool
) -> None:
    await scheduled_instance(store, vault)
    await catch_up(pool)
    clock = Clock(datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    scheduler = BackupScheduler(pool, store, vault, worker="w1", clock=clock)
    assert await scheduler.tick() == []  # not due since the schedule was set

    clock.now = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)  # three nights missed
    assert len(await scheduler.tick()) == 1
    assert await scheduler.tick() == []
    found = await requested_backups(store, pool)
    assert [event.due_at for event in found] == [datetime(2026, 12, 5, 3, 0, tzinfo=UTC)]


async def test_retention_expires_old_scheduled_backups_as_recorded_deletions(
    store: EventStore, vault: Vault, pool: Pool
) -> None:
    await scheduled_instance(store, vault, daily=2)
    await catch_up(pool)
    clock = Clock(SET_AT)
    scheduler = BackupScheduler(pool, store, vault, worker="w1", clock=clock)
    taken = []
    for day in range(2, 6):
        clock.now = datetime(2026, 12, day, 3, 1, tzinfo=UTC)
        (backup_id,) = await scheduler.tick()
        event = next(e for e in await requested_backups(store, pool) if e.backup_id == backup_id)
        await complete_backup(store, backup_id, event.operation_id, clock.now)
        taken.append(backup_id)
    await catch_up(pool)

    clock.now += timedelta(hours=1)
    await scheduler.tick()

    deletions = []
    for backup_id in taken:
        events = store.registry.decode_all(await store.read_stream(f"backup-{backup_id}"))
        deletions += [e for e in events if isinstance(e, BackupDeletionRequested)]
    assert sorted(e.backup_id for e in deletions) == sorted(taken[:2])
    assert all(e.expired for e in deletions)
