"""An instance's backup schedule stream: the schedule in force (set again to change it)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from commands.runner import folder
from events.backup import BackupScheduleSet
from events.registry import DomainEvent


class SetSchedule(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    cron: str
    timezone: str
    destination_id: str
    keep_daily: int
    keep_weekly: int
    keep_monthly: int


def evolve(state: BackupScheduleSet | None, event: DomainEvent) -> BackupScheduleSet | None:
    return event if isinstance(event, BackupScheduleSet) else state


def initial_state() -> BackupScheduleSet | None:
    return None


fold = folder(initial_state(), evolve)


def decide(
    command: SetSchedule, state: BackupScheduleSet | None, now: datetime
) -> list[DomainEvent]:
    fields = msgspec.structs.asdict(command)
    if state is not None and {k: getattr(state, k) for k in fields} == fields:
        return []  # the same schedule again
    return [BackupScheduleSet(**fields, set_at=now)]
