"""Reading health scores as of now: the factors the health projection stored, with freshness
evaluated at the moment of reading (projections/health_score.py). The instance list, the
instance detail and /health-score all go through `score_now`, so they agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import msgspec

from projections.health_score import Factor, Score, score_at
from projections.reader import Reader, fetch_text

STORED_SCORE_SQL: Final = (
    b"CASE WHEN h.instance_id IS NULL THEN NULL ELSE jsonb_build_object("
    b"'factors', h.factors, 'last_checked_at', h.last_checked_at,"
    b" 'score_updated_at', h.score_updated_at) END"
)
"""A StoredScore as JSON from the health row `h` (NULL when the instance has none)."""

_GET: Final = (
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
    found = await fetch_text(conn, _GET, (org_id, instance_id))
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
