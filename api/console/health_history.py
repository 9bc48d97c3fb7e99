"""`GET /api/instances/{id}/health-history`: the 5-minute buckets of the last 24 hours behind
the health score, for the console's availability and latency sparkline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

import msgspec
from litestar import get
from litestar.params import FromPath

from api.routes_instances import VIEW
from api.services import Deps
from api.web import AuthRequest, MinPosition, problems
from commands.refusals import InstanceNotFound

BUCKET_SECONDS: Final = 300

# The instance's row decides the organization; its health row may not exist yet.
_SAMPLES: Final = (
    b"SELECT coalesce(h.samples, '[]'::jsonb)::text FROM instances i"
    b" LEFT JOIN health h ON h.instance_id = i.id WHERE i.org_id = %s AND i.id = %s"
)


class _StoredBucket(msgspec.Struct, frozen=True, array_like=True):
    """The leading fields of a stored bucket (projections/health_samples.py, migration 0004)."""

    start: int
    probes: int
    failures: int
    timed: int
    p95_total_ms: float


class HealthBucket(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    start: datetime
    probes: int
    failures: int
    p95_ms: float | None


class HealthHistory(msgspec.Struct, frozen=True, rename="camel", kw_only=True):
    instance_id: str
    bucket_seconds: int
    buckets: list[HealthBucket]


_stored: Final = msgspec.json.Decoder(list[msgspec.Raw])
_bucket: Final = msgspec.json.Decoder(_StoredBucket)


@get(
    "/instances/{instance_id:uuid}/health-history",
    operation_id="getInstanceHealthHistory",
    summary="Get the last 24 hours of an instance's health probes",
    opt=VIEW,
    responses=problems(401, 403, 404, 503),
    tags=["instances"],
)
async def health_history(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> HealthHistory:
    """Probes, failures and the probe-weighted latency p95 per 5 minutes, oldest first;
    empty until the instance is first observed."""
    principal = request.user
    await services.reads.before_read(principal, min_position, ("instances", "health"))
    async with services.pool.connection() as conn:
        cur = await conn.execute(_SAMPLES, (principal.org_id, str(instance_id)))
        row = await cur.fetchone()
    if row is None:
        raise InstanceNotFound
    buckets = [_bucket.decode(raw) for raw in _stored.decode(row[0])]
    return HealthHistory(
        instance_id=str(instance_id),
        bucket_seconds=BUCKET_SECONDS,
        buckets=[
            HealthBucket(
                start=datetime.fromtimestamp(b.start, UTC),
                probes=b.probes,
                failures=b.failures,
                p95_ms=round(b.p95_total_ms / b.timed, 1) if b.timed else None,
            )
            for b in buckets
        ],
    )
