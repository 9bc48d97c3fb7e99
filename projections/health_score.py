"""The health score of an instance: 0 to 100 and a grade, from five published factors.

    score = round(Σ weight * factor score)            each factor scores 0 to 100
    grade = A if score ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, else F

availability (0.40)  raw: % of /web/health probes that passed in the last 24 h. A probe
    fails when the container is not running or /web/health gives no 2xx within 5 s.
    score = 100 * clamp(1 - (failed fraction - 0.001) / 0.05): 100 up to 0.1 % failed (the
    99.9 % tier of hosting SLAs), 0 from 5.1 % failed (~73 min down in a day), linear between.
latency (0.20)  raw: p95 of /web/health in ms over 24 h, the probe-weighted mean of the
    windows' own p95 (the log keeps windows, not every probe).
    score = 100 up to 250 ms, 0 from 2,500 ms, linear between; 0 if no probe answered.
stability (0.20)  raw: container restarts and OOM kills in 24 h (Docker's RestartCount going
    up; planned restarts by odoofleet do not raise it).
    score = max(0, 100 - 20 * restarts - 30 * OOM kills); an OOM kill that restarts the
    container costs both.
headroom (0.10)  raw: peak memory in 24 h as % of the container's memory limit.
    score = Pulseway's bands: > 95 % → 0, > 85 → 25, > 75 → 50, > 65 → 75, else 100;
    100 when no limit is known. (CPU is not scored: docker's CPU % is relative to one core
    and says nothing about headroom without the container's quota.)
freshness (0.10)  raw: age in seconds of the last observation (lastCheckedAt).
    score = 100 up to 10 min, 0 from 60 min, linear between. The observer records every
    instance at least once per heartbeat (5 min by default) while it can reach its server,
    so a fresh score means the observer is watching.

The first four are folded from the log into the health row (rebuilt exactly). Freshness
depends on "now", so it is evaluated when the score is read, by `score_at`, the one function
behind the instance list, the instance detail and /health-score. Score and grade are null
while there is no probe in the last 24 hours (never observed running, or stopped for a day):
the windows of a stopped instance hold no probes, so stopping on purpose costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import msgspec

from projections.health_samples import Bucket

WEIGHTS: Final = {
    "availability": 0.40,
    "latency": 0.20,
    "stability": 0.20,
    "headroom": 0.10,
    "freshness": 0.10,
}
GRADES: Final = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))
FRESH_SECONDS: Final = 600.0
STALE_SECONDS: Final = 3600.0
_MEMORY_BANDS: Final = ((95.0, 0.0), (85.0, 25.0), (75.0, 50.0), (65.0, 75.0))

Value = float | int | dict[str, int] | None


class Factor(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    weight: float
    score: float | None  # None: nothing to judge it on
    value: Value
    detail: str


class Score(msgspec.Struct, frozen=True, kw_only=True):
    score: int | None
    grade: str | None
    factors: list[Factor]


def grade(score: int) -> str:
    return next((letter for floor, letter in GRADES if score >= floor), "F")


def stored_factors(buckets: Sequence[Bucket], observed_at: datetime) -> list[Factor]:
    """The factors as of an observation (freshness then full): what the health row keeps."""
    return [
        availability(buckets),
        latency(buckets),
        stability(buckets),
        headroom(buckets),
        freshness(observed_at, observed_at),
    ]


def score_at(factors: Sequence[Factor], last_checked_at: datetime, now: datetime) -> Score:
    """The score read at `now`: the stored factors with freshness evaluated at `now`."""
    current = [f for f in factors if f.name != "freshness"] + [freshness(last_checked_at, now)]
    return Score(score=total(current), grade=_grade_of(total(current)), factors=current)


def total(factors: Sequence[Factor]) -> int | None:
    if any(f.score is None for f in factors if f.name == "availability"):
        return None
    return round(sum(f.weight * (f.score or 0.0) for f in factors))


def _grade_of(score: int | None) -> str | None:
    return None if score is None else grade(score)


def availability(buckets: Sequence[Bucket]) -> Factor:
    probes = sum(b.probes for b in buckets)
    failures = sum(b.failures for b in buckets)
    if not probes:
        return _factor("availability", None, None, "no probe in the last 24 h")
    failed = failures / probes
    score = 100 * _clamp(1 - (failed - 0.001) / 0.05)
    passed = probes - failures
    detail = f"{passed:,} of {probes:,} probes passed in the last 24 h"
    return _factor("availability", score, round(100 * (1 - failed), 3), detail)


def latency(buckets: Sequence[Bucket]) -> Factor:
    if not sum(b.probes for b in buckets):
        return _factor("latency", None, None, "no probe in the last 24 h")
    timed = sum(b.timed for b in buckets)
    if not timed:
        return _factor("latency", 0.0, None, "no probe answered in the last 24 h")
    p95 = sum(b.p95_total_ms for b in buckets) / timed
    slowest = max((b.max_ms for b in buckets if b.max_ms is not None), default=p95)
    score = 100 * _clamp((2500 - p95) / (2500 - 250))
    detail = f"/web/health p95 {p95:,.0f} ms over 24 h, slowest {slowest:,.0f} ms"
    return _factor("latency", score, round(p95, 1), detail)


def stability(buckets: Sequence[Bucket]) -> Factor:
    if not buckets:
        return _factor("stability", None, None, "nothing observed in the last 24 h")
    restarts = sum(b.restarts for b in buckets)
    kills = sum(b.oom_kills for b in buckets)
    score = max(0.0, 100.0 - 20 * restarts - 30 * kills)
    detail = f"{_count(restarts, 'restart')} and {_count(kills, 'OOM kill')} in the last 24 h"
    return _factor("stability", score, {"restarts": restarts, "oomKills": kills}, detail)


def headroom(buckets: Sequence[Bucket]) -> Factor:
    ratios = [
        100 * b.peak_memory_bytes / b.memory_limit_bytes
        for b in buckets
        if b.peak_memory_bytes is not None and b.memory_limit_bytes
    ]
    if not ratios:
        return _factor("headroom", 100.0, None, "no memory use against a known limit yet")
    peak = max(ratios)
    score = next((s for above, s in _MEMORY_BANDS if peak > above), 100.0)
    return _factor("headroom", score, round(peak, 1), f"memory peaked at {peak:.0f}% of its limit")


def freshness(last_checked_at: datetime, now: datetime) -> Factor:
    age = max(0.0, (now - last_checked_at).total_seconds())
    score = 100 * _clamp((STALE_SECONDS - age) / (STALE_SECONDS - FRESH_SECONDS))
    detail = f"last observed {_age(age)} ago"
    return _factor("freshness", score, round(age), detail)


def _factor(name: str, score: float | None, value: Value, detail: str) -> Factor:
    shown = None if score is None else round(score, 1)
    return Factor(name=name, weight=WEIGHTS[name], score=shown, value=value, detail=detail)


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
