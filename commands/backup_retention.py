"""When a schedule is due, and which scheduled backups its GFS retention keeps: pure
functions of the schedule, the backups and the time (no clock inside)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
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
