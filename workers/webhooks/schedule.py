"""When a failed delivery is tried again: exponential backoff for up to 24 hours after its
first attempt, then the endpoint is given up on. Pure: the clock comes in as `now`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeAlias

import msgspec


class RetrySchedule(msgspec.Struct, frozen=True, kw_only=True):
    first_delay: timedelta = timedelta(seconds=5)
    factor: float = 3.0
    max_delay: timedelta = timedelta(hours=6)
    give_up_after: timedelta = timedelta(hours=24)


class RetryAt(msgspec.Struct, frozen=True):
    at: datetime


class GiveUp(msgspec.Struct, frozen=True):
    reason: str


AfterFailure: TypeAlias = RetryAt | GiveUp


def after_failure(
    schedule: RetrySchedule, attempts: int, first_attempt_at: datetime, now: datetime
) -> AfterFailure:
    """What follows the `attempts`-th failed attempt of a delivery first tried at
    `first_attempt_at`. The last retry falls on the deadline itself, so an endpoint gets its
    full 24 hours however the delays add up."""
    deadline = first_attempt_at + schedule.give_up_after
    if now >= deadline:
        return GiveUp(
            f"deliveries failed for {_span(schedule.give_up_after)} ({attempts} attempts)"
        )
    delay = min(schedule.first_delay * schedule.factor ** max(0, attempts - 1), schedule.max_delay)
    return RetryAt(min(now + delay, deadline))


def _span(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"
