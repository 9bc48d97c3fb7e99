"""The retry schedule of a failed delivery: exponential, for 24 hours, then give up. Pure:
the times are made up, nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.webhooks.schedule import GiveUp, RetryAt, RetrySchedule, after_failure

FIRST = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
DEFAULT = RetrySchedule()


def test_retries_come_5_15_45_seconds_apart_and_so_on() -> None:
    delays = []
    now = FIRST
    for attempts in range(1, 4):
        step = after_failure(DEFAULT, attempts, FIRST, now)
        assert isinstance(step, RetryAt)
        delays.append((step.at - now).total_seconds())
        now = step.at
    assert delays == [5, 15, 45]


def test_no_delay_is_longer_than_six_hours() -> None:
    step = after_failure(DEFAULT, 20, FIRST, FIRST + timedelta(hours=1))
    assert step == RetryAt(FIRST + timedelta(hours=7))


def test_the_last_retry_falls_on_the_24th_hour_and_its_failure_gives_up() -> None:
    now = FIRST
    attempts = 0
    while True:
        attempts += 1
        step = after_failure(DEFAULT, attempts, FIRST, now)
        if isinstance(step, GiveUp):
            break
        now = step.at
    assert now == FIRST + timedelta(hours=24)
    assert attempts == 13
    assert step == GiveUp("deliveries failed for 24 h (13 attempts)")


def test_a_failure_long_after_the_first_attempt_gives_up_at_once() -> None:
    late = FIRST + timedelta(hours=30)
    assert isinstance(after_failure(DEFAULT, 2, FIRST, late), GiveUp)
