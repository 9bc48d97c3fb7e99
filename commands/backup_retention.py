"""When a schedule is due, and which scheduled backups its GFS retention keeps: pure
functions of the schedule, the backups and the time (no clock inside)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]


def latest_due(cron: str, timezone: str, now: datetime, since: datetime) -> datetime | None:
    """The latest time the schedule was due at or before `now` and after `since` (None: not
    due since). Only the latest one: windows missed while no worker ran collapse into it."""
    local = now.astimezone(ZoneInfo(timezone))
    due: datetime = croniter(cron, local).get_prev(datetime)
    if croniter.match(cron, local.replace(second=0, microsecond=0)):
        due = local.replace(second=0, microsecond=0)
    return due if due > since else None


def expired(
    backups: Sequence[tuple[str, datetime]],
    timezone: str,
    *,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
) -> list[str]:
    """The ids of `backups` (id, completed at) that grandfather-father-son retention lets go:
    the newest backup of each of the `keep_daily` latest days that have one is kept, of each
    of the `keep_weekly` latest ISO weeks, and of each of the `keep_monthly` latest months
    (calendar periods in the schedule's time zone). The newest backup is always kept."""
    zone = ZoneInfo(timezone)
    newest_first = sorted(backups, key=lambda item: item[1], reverse=True)
    kept: set[str] = {newest_first[0][0]} if newest_first else set()

    def keep(period: Callable[[datetime], Hashable], count: int) -> None:
        seen: list[Hashable] = []
        for backup_id, at in newest_first:
            key = period(at.astimezone(zone))
            if key in seen:
                continue
            if len(seen) == count:
                return
            seen.append(key)
            kept.add(backup_id)

    keep(lambda at: at.date(), keep_daily)
    keep(lambda at: at.isocalendar()[:2], keep_weekly)
    keep(lambda at: (at.year, at.month), keep_monthly)
    return [backup_id for backup_id, _ in newest_first if backup_id not in kept]


# Due times looked at ahead of a backup: a minutely schedule with a year of monthly retention
# would need half a million; past this many the expiry is left unknown (None).
_LOOKAHEAD: Final = 20_000


def expires_at(
    taken_at: datetime,
    cron: str,
    timezone: str,
    *,
    keep_daily: int,
    keep_weekly: int,
    keep_monthly: int,
) -> datetime | None:
    """When `expired` lets a scheduled backup taken at `taken_at` go, if the schedule keeps
    running as it is: the due time that brings the newer backup making it neither the newest
    of one of the `keep_daily` latest days, nor of the `keep_weekly` latest weeks, nor of the
    `keep_monthly` latest months. None when that lies beyond the look-ahead."""
    zone = ZoneInfo(timezone)
    taken = taken_at.astimezone(zone)
    periods: list[tuple[Callable[[datetime], Hashable], int]] = [
        (lambda at: at.date(), keep_daily),
        (lambda at: at.isocalendar()[:2], keep_weekly),
        (lambda at: (at.year, at.month), keep_monthly),
    ]
    newer: list[set[Hashable]] = [set() for _ in periods]
    let_go: list[datetime | None] = [None for _ in periods]
    schedule = croniter(cron, taken)
    for _ in range(_LOOKAHEAD):
        due: datetime = schedule.get_next(datetime)
        for index, (period, count) in enumerate(periods):
            if let_go[index] is not None:
                continue
            key = period(due)
            if key == period(taken):  # a newer backup of the same period: it is kept instead
                let_go[index] = due
            else:
                newer[index].add(key)
                if len(newer[index]) >= max(count, 1):
                    let_go[index] = due
        if all(at is not None for at in let_go):
            return max(at for at in let_go if at is not None).astimezone(taken_at.tzinfo)
    return None
