"""The health read model: the latest observation of each instance (API.md "Health"), the
last 24 hours of observation windows, and the health score's factors folded from them
(projections/health_score.py), and their reads.

A score is read as of now: its freshness is evaluated at the moment of reading, and the
instance list, the instance detail and /health-score all go through `score_now`, so they agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from events.health import HealthObserved, HealthStatus
from projections.health_samples import Bucket, add_window
from projections.health_score import Factor, Score, grade, score_at, stored_factors, total
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row
from projections.runtime.reader import Reader, fetch_text

# A container answering at all counts as seen; "unhealthy" and "unknown" do not.
_SEEN: frozenset[str] = frozenset({"healthy", "degraded"})


class HealthView(Row, frozen=True, kw_only=True):
    instance_id: str
    org_id: str
    server_id: str
    status: HealthStatus
    container_state: str | None
    http_status: int | None
    response_time_ms: float | None
    # Docker's RestartCount of the container serving, as last observed, and when an
    # observation first showed a restart (docs/instances.md "Restart counts"). The Instance's
    # restartCount and lastRestartAt are these two.
    restart_count: int | None
    last_restart_at: datetime | None = None
    oom_killed: bool | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    cpu_percent: float | None
    last_seen_at: datetime | None
    last_checked_at: datetime
    message: str
    # The score as of last_checked_at (freshness full); read it through `score_at`.
    score: int | None = None
    grade: str | None = None
    score_updated_at: datetime | None = None
    factors: list[Factor] | None = None
    samples: list[Bucket] = []


def _restarted(row: HealthView | None, e: HealthObserved) -> bool:
    """Whether this observation is the first to show a restart: the observer counted one in
    its window (it follows the container across colours and its own restarts), or the count
    is above the last one observed (none observed counts as 0)."""
    before = row.restart_count if row is not None else None
    return e.window.restarts > 0 or (e.restart_count or 0) > (before or 0)


def observed(row: HealthView | None, e: HealthObserved, env: Envelope) -> HealthView:
    last_seen = row.last_seen_at if row is not None else None
    last_restart = row.last_restart_at if row is not None else None
    samples = add_window(row.samples if row else [], e.window, e.observed_at, e.memory_limit_bytes)
    factors = stored_factors(samples, e.observed_at)
    score = total(factors)
    return HealthView(
        instance_id=e.instance_id,
        org_id=env.meta.org_id,
        server_id=e.server_id,
        status=e.status,
        container_state=e.container_state,
        http_status=e.http_status,
        response_time_ms=e.response_time_ms,
        restart_count=e.restart_count,
        last_restart_at=e.observed_at if _restarted(row, e) else last_restart,
        oom_killed=e.oom_killed,
        memory_bytes=e.memory_bytes,
        memory_limit_bytes=e.memory_limit_bytes,
        cpu_percent=e.cpu_percent,
        last_seen_at=e.observed_at if e.status in _SEEN else last_seen,
        last_checked_at=e.observed_at,
        message=e.message,
        score=score,
        grade=None if score is None else grade(score),
        score_updated_at=None if score is None else e.observed_at,
        factors=factors,
        samples=samples,
        version=env.version,
    )


HEALTH: Folder[HealthView] = Folder("health", HealthView, {HealthObserved: observed})


_LATEST: Final = b"SELECT to_json(h)::text FROM health h WHERE org_id = %s AND instance_id = %s"
_health: Final = msgspec.json.Decoder(HealthView)


async def get_health(conn: Reader, org_id: str, instance_id: str) -> HealthView | None:
    """None until the instance was first observed."""
    found = await fetch_text(conn, _LATEST, (org_id, instance_id))
    return None if found is None else _health.decode(found)


STORED_SCORE_SQL: Final = (
    b"CASE WHEN h.instance_id IS NULL THEN NULL ELSE jsonb_build_object("
    b"'factors', h.factors, 'last_checked_at', h.last_checked_at,"
    b" 'score_updated_at', h.score_updated_at) END"
)
"""A StoredScore as JSON from the health row `h` (NULL when the instance has none)."""

_STORED: Final = (
    b"SELECT (" + STORED_SCORE_SQL + b")::text FROM health h"
    b" WHERE h.org_id = %s AND h.instance_id = %s"
)


class StoredScore(msgspec.Struct, frozen=True, kw_only=True):
    factors: list[Factor] | None
    last_checked_at: datetime
    score_updated_at: datetime | None


class HealthScoreView(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: str
    score: int | None
    grade: str | None
    updated_at: datetime | None
    factors: list[Factor]


_stored: Final = msgspec.json.Decoder(StoredScore)


def score_now(stored: StoredScore | None, now: datetime | None = None) -> Score | None:
    """The score at `now` (default: the current time); None before the first observation."""
    if stored is None or stored.factors is None:
        return None
    return score_at(stored.factors, stored.last_checked_at, now or datetime.now(UTC))


async def get_health_score(
    conn: Reader, org_id: str, instance_id: str, now: datetime | None = None
) -> HealthScoreView:
    """Score, grade and every factor; nulls and no factors until the first observation."""
    found = await fetch_text(conn, _STORED, (org_id, instance_id))
    stored = None if found is None else _stored.decode(found)
    score = score_now(stored, now)
    if stored is None or score is None:
        return HealthScoreView(
            instance_id=instance_id, score=None, grade=None, updated_at=None, factors=[]
        )
    return HealthScoreView(
        instance_id=instance_id,
        score=score.score,
        grade=score.grade,
        updated_at=stored.score_updated_at,
        factors=score.factors,
    )
