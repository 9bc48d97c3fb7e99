"""The published health score formulas and the 24-hour buckets they read (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.health import HealthWindow
from projections.health_samples import BUCKET_SECONDS, Bucket, add_window
from projections.health_score import (
    WEIGHTS,
    availability,
    freshness,
    grade,
    headroom,
    latency,
    score_at,
    stability,
    stored_factors,
    total,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def window(
    probes: int = 10,
    failures: int = 0,
    p95: float | None = 20.0,
    restarts: int = 0,
    oom_kills: int = 0,
    peak: int | None = None,
    at: datetime = T0,
) -> HealthWindow:
    return HealthWindow(
        started_at=at - timedelta(minutes=5),
        probes=probes,
        failures=failures,
        latency_p50_ms=p95 and p95 / 2,
        latency_p95_ms=p95,
        latency_max_ms=p95 and p95 * 2,
        restarts=restarts,
        oom_kills=oom_kills,
        peak_memory_bytes=peak,
    )


def buckets(*windows: HealthWindow, limit: int | None = 1000) -> list[Bucket]:
    found: list[Bucket] = []
    for w in windows:
        found = add_window(found, w, w.started_at + timedelta(minutes=5), limit)
    return found


@pytest.mark.parametrize(
    ("score", "letter"),
    [(100, "A"), (90, "A"), (89, "B"), (80, "B"), (79, "C"), (70, "C"), (60, "D"), (59, "F")],
)
def test_grades_follow_the_published_floors(score: int, letter: str) -> None:
    assert grade(score) == letter


def test_the_weights_sum_to_one_in_the_published_order() -> None:
    assert list(WEIGHTS) == ["availability", "latency", "stability", "headroom", "freshness"]
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("failures", "expected"), [(0, 100.0), (1, 100.0), (10, 82.0), (20, 62.0), (51, 0.0)]
)
def test_availability_is_full_up_to_a_tenth_of_a_percent_failed(
    failures: int, expected: float
) -> None:
    factor = availability(buckets(window(probes=1000, failures=failures)))

    assert factor.score == expected
    assert factor.value == round(100 * (1 - failures / 1000), 3)


@pytest.mark.parametrize(("p95", "expected"), [(20.0, 100.0), (1375.0, 50.0), (3000.0, 0.0)])
def test_latency_falls_linearly_between_250_ms_and_2_5_s(p95: float, expected: float) -> None:
    assert latency(buckets(window(p95=p95))).score == expected


def test_latency_is_the_probe_weighted_mean_of_the_windows_p95() -> None:
    later = T0 + timedelta(hours=1)

    factor = latency(buckets(window(probes=30, p95=100.0), window(probes=10, p95=500.0, at=later)))

    assert factor.value == 200.0


def test_latency_scores_nothing_when_no_probe_answered() -> None:
    factor = latency(buckets(window(failures=10, p95=None)))

    assert (factor.score, factor.detail) == (0.0, "no probe answered in the last 24 h")


def test_an_oom_kill_that_restarts_costs_both() -> None:
    factor = stability(buckets(window(restarts=1, oom_kills=1)))

    assert (factor.score, factor.value) == (50.0, {"restarts": 1, "oomKills": 1})
    assert factor.detail == "1 restart and 1 OOM kill in the last 24 h"


@pytest.mark.parametrize(
    ("peak", "expected"), [(600, 100.0), (700, 75.0), (800, 50.0), (900, 25.0), (960, 0.0)]
)
def test_headroom_uses_the_memory_bands(peak: int, expected: float) -> None:
    assert headroom(buckets(window(peak=peak), limit=1000)).score == expected


def test_headroom_is_full_when_no_limit_is_known() -> None:
    factor = headroom(buckets(window(peak=900), limit=None))

    assert (factor.score, factor.value) == (100.0, None)


@pytest.mark.parametrize(("minutes", "expected"), [(0, 100.0), (10, 100.0), (35, 50.0), (90, 0.0)])
def test_freshness_falls_from_10_to_60_minutes(minutes: int, expected: float) -> None:
    factor = freshness(T0, T0 + timedelta(minutes=minutes))

    assert (factor.score, factor.value) == (expected, minutes * 60)


def test_the_score_read_later_has_only_freshness_changed() -> None:
    stored = stored_factors(buckets(window()), T0)

    now = score_at(stored, T0, T0 + timedelta(minutes=35))

    assert total(stored) == 100
    assert (now.score, now.grade) == (95, "A")
    assert now.factors[:4] == stored[:4]
    assert now.factors[4].detail == "last observed 35 min ago"


def test_the_score_is_null_without_a_probe_in_24_hours() -> None:
    stopped = window(probes=0, p95=None, peak=None)
    factors = stored_factors(buckets(stopped), T0)

    assert total(factors) is None
    assert factors[0].detail == "no probe in the last 24 h"


def test_windows_ending_in_the_same_five_minutes_share_a_bucket() -> None:
    first = add_window([], window(probes=3, failures=1), T0, 1000)
    both = add_window(first, window(probes=2, peak=700), T0 + timedelta(seconds=90), 2000)

    assert len(both) == 1
    assert (both[0].probes, both[0].failures) == (5, 1)
    assert (both[0].peak_memory_bytes, both[0].memory_limit_bytes) == (700, 2000)


def test_buckets_older_than_24_hours_drop_out_and_empty_windows_add_none() -> None:
    old = add_window([], window(), T0, None)
    day_later = T0 + timedelta(hours=24)

    kept = add_window(old, window(probes=0, p95=None), day_later - timedelta(minutes=5), None)
    dropped = add_window(old, window(probes=0, p95=None), day_later, None)

    assert [b.start for b in kept] == [old[0].start]
    assert dropped == []
    assert old[0].start % BUCKET_SECONDS == 0
