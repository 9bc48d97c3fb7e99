"""How the observer judges a sample, counts restarts and decides to record (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.health import HealthStatus
from workers.health.fleet import LastObservation
from workers.health.probe import ContainerSample
from workers.health.window import (
    Reading,
    Tracker,
    Window,
    due,
    judge,
    observation,
    recorded,
    restore,
    stopped,
    take_sample,
    unseen,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTAINER = "acme-blue-odoo-1"


def sample(**changes: Any) -> ContainerSample:
    fields: dict[str, Any] = {
        "instance_id": "i-1",
        "container": CONTAINER,
        "container_state": "running",
        "health": "healthy",
        "restart_count": 0,
        "oom_killed": False,
        "exit_code": 0,
        "memory_bytes": 300,
        "memory_limit_bytes": 1000,
        "cpu_percent": 1.5,
        "http_status": 200,
        "response_time_ms": 12.0,
    }
    return ContainerSample(**(fields | changes))


def tracker(status: HealthStatus = "healthy", recorded_at: datetime | None = T0) -> Tracker:
    return Tracker(status=status, recorded_at=recorded_at, version=1, window=Window(T0))


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({}, "healthy", "/web/health answered in 12 ms"),
        ({"container_state": "missing"}, "unhealthy", f"container {CONTAINER} does not exist"),
        ({"container_state": "exited"}, "unhealthy", f"container {CONTAINER} is exited"),
        ({"http_status": None}, "unhealthy", "/web/health did not answer within 5 s"),
        ({"http_status": 500}, "unhealthy", "/web/health answered HTTP 500"),
        ({"response_time_ms": 1500.0}, "degraded", "slow: /web/health took 1,500 ms"),
        ({"memory_bytes": 950}, "degraded", "memory at 95% of its limit"),
        ({"health": "unhealthy"}, "degraded", "Docker's healthcheck reports unhealthy"),
    ],
)
def test_a_sample_is_judged_by_the_published_rules(
    changes: dict[str, Any], status: str, message: str
) -> None:
    assert judge(sample(**changes), Window(T0)) == (status, message)


def test_a_failed_probe_counts_in_the_window_and_a_slow_one_does_not() -> None:
    t = tracker()

    take_sample(t, sample(http_status=500, response_time_ms=4.0), T0)
    take_sample(t, sample(response_time_ms=1500.0), T0)
    take_sample(t, sample(container_state="exited", http_status=None), T0)

    summary = t.window.summary()
    assert (summary.probes, summary.failures) == (3, 2)
    assert (summary.latency_p50_ms, summary.latency_p95_ms) == (4.0, 1500.0)


def test_restarts_count_from_the_last_sample_of_the_same_container() -> None:
    t = tracker()
    take_sample(t, sample(restart_count=1), T0)

    again = take_sample(t, sample(restart_count=3), T0)
    take_sample(t, sample(container="acme-green-odoo-1", restart_count=7), T0)

    assert again.status == "degraded"
    assert again.message == "restarted 2x since 12:00:00Z"
    assert t.window.restarts == 2
    assert t.restart_count == 7


def test_an_oom_kill_counts_once_until_the_container_restarts() -> None:
    t = tracker()

    for count in (0, 0, 1):
        take_sample(t, sample(oom_killed=True, restart_count=count), T0)

    assert t.window.oom_kills == 2


def test_a_change_is_recorded_at_once_and_the_same_status_once_per_heartbeat() -> None:
    t = tracker()
    healthy = Reading("healthy", "ok", None, heartbeat=True)
    unreachable = Reading("unknown", "server unreachable", None, heartbeat=False)
    later = T0 + timedelta(seconds=299)

    assert due(t, Reading("degraded", "slow", None, True), later, 300)
    assert not due(t, healthy, later, 300)
    assert due(t, healthy, T0 + timedelta(seconds=300), 300)
    assert due(tracker(recorded_at=None), healthy, T0, 300)
    assert not due(tracker("unknown"), unreachable, T0 + timedelta(hours=1), 300)


def test_an_unseen_instance_keeps_its_status_for_three_intervals() -> None:
    t = tracker()
    take_sample(t, sample(), T0)

    within = unseen(t, "timed out", T0 + timedelta(seconds=90), 30)
    beyond = unseen(t, "timed out", T0 + timedelta(seconds=91), 30)

    assert within is None
    assert beyond == Reading("unknown", "not observed for 91 s: timed out", None, False)
    assert unseen(tracker(), "no line", T0, 30) == Reading("unknown", "no line", None, False)


def test_a_recorded_observation_starts_a_new_window() -> None:
    t = tracker()
    reading = take_sample(t, sample(), T0 + timedelta(seconds=30))
    event = observation(t, "i-1", "s-1", reading, T0 + timedelta(seconds=30))

    recorded(t, event, 7)

    assert (event.window.probes, event.window.started_at) == (1, T0)
    assert (t.status, t.version, t.window.started_at) == ("healthy", 7, event.observed_at)
    assert t.window.probes == 0


def test_a_restored_tracker_carries_on_from_the_last_observation() -> None:
    last = LastObservation(
        status="degraded",
        last_checked_at=T0,
        container_state="running",
        restart_count=4,
        oom_killed=False,
        version=12,
    )

    t = restore(last, T0 + timedelta(minutes=1))
    take_sample(t, sample(restart_count=5), T0 + timedelta(minutes=1))

    assert (t.status, t.recorded_at, t.version, t.seen_at) == (
        "degraded",
        T0,
        12,
        T0 + timedelta(minutes=1),
    )
    assert (t.window.started_at, t.window.restarts) == (T0, 1)
    assert restore(None, T0).recorded_at is None


def test_a_stopped_instance_reads_unknown_and_keeps_its_heartbeat() -> None:
    reading = stopped()

    assert (reading.status, reading.heartbeat) == ("unknown", True)
    assert reading.message.startswith("stopped")
