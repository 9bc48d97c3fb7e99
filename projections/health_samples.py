"""The health projection's rolling memory: the observation windows of the last 24 hours,
summed into 5-minute buckets, folded from HealthObserved (what the score's factors read).

Buckets rather than one entry per event keep a row small (at most 289 buckets) however often
the status changes, and the fold is a pure function of the events in order, so a rebuild
produces the same buckets. A window counts in the bucket of its end (the event's
`observed_at`); a bucket drops out once its start is 24 hours before the observation folded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, TypeVar

import msgspec

from events.health import HealthWindow

BUCKET_SECONDS: Final = 300
SPAN_SECONDS: Final = 24 * 3600
N = TypeVar("N", int, float)


class Bucket(msgspec.Struct, frozen=True, array_like=True):
    """What the windows that ended within five minutes add up to (stored as a JSON array)."""

    start: int  # epoch seconds, a multiple of BUCKET_SECONDS
    probes: int
    failures: int
    timed: int  # probes of the windows that had a latency p95
    p95_total_ms: float  # Σ window p95 * its probes, for a probe-weighted mean
    max_ms: float | None
    restarts: int
    oom_kills: int
    peak_memory_bytes: int | None
    memory_limit_bytes: int | None


def bucket_start(at: datetime) -> int:
    seconds = int(at.timestamp())
    return seconds - seconds % BUCKET_SECONDS


def add_window(
    buckets: Sequence[Bucket],
    window: HealthWindow,
    observed_at: datetime,
    memory_limit_bytes: int | None,
) -> list[Bucket]:
    """`buckets` with the window added and those older than 24 hours dropped."""
    start = bucket_start(observed_at)
    kept = [b for b in buckets if b.start > start - SPAN_SECONDS]
    if _empty(window):
        return kept
    new = _bucket(start, window, memory_limit_bytes)
    same = next((b for b in kept if b.start == start), None)
    if same is None:
        return sorted([*kept, new], key=lambda b: b.start)
    return [_merge(b, new) if b is same else b for b in kept]


def _empty(window: HealthWindow) -> bool:
    return not (window.probes or window.restarts or window.oom_kills or window.peak_memory_bytes)


def _bucket(start: int, window: HealthWindow, limit: int | None) -> Bucket:
    p95 = window.latency_p95_ms
    return Bucket(
        start=start,
        probes=window.probes,
        failures=window.failures,
        timed=window.probes if p95 is not None else 0,
        p95_total_ms=p95 * window.probes if p95 is not None else 0.0,
        max_ms=window.latency_max_ms,
        restarts=window.restarts,
        oom_kills=window.oom_kills,
        peak_memory_bytes=window.peak_memory_bytes,
        memory_limit_bytes=limit,
    )


def _merge(a: Bucket, b: Bucket) -> Bucket:
    return Bucket(
        start=a.start,
        probes=a.probes + b.probes,
        failures=a.failures + b.failures,
        timed=a.timed + b.timed,
        p95_total_ms=a.p95_total_ms + b.p95_total_ms,
        max_ms=_largest(a.max_ms, b.max_ms),
        restarts=a.restarts + b.restarts,
        oom_kills=a.oom_kills + b.oom_kills,
        peak_memory_bytes=_largest(a.peak_memory_bytes, b.peak_memory_bytes),
        memory_limit_bytes=b.memory_limit_bytes or a.memory_limit_bytes,
    )


def _largest(a: N | None, b: N | None) -> N | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
