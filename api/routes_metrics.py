"""GET /metrics: Prometheus text, no token (API.md, "Auth and tenancy")."""

from __future__ import annotations

import psycopg
from litestar import get
from litestar.di import NamedDependency

from api.metrics_http import HttpMetrics
from api.metrics_log import log_metrics
from api.services import Deps

# Litestar adds `; charset=utf-8` to text media types itself.
CONTENT_TYPE = "text/plain; version=0.0.4"


@get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    tags=["probes"],
    media_type=CONTENT_TYPE,
)
async def metrics(services: Deps, http_metrics: NamedDependency[HttpMetrics]) -> str:
    lines = http_metrics.render()
    up = 1
    try:
        async with services.pool.connection(timeout=2.0) as conn:
            lines += await log_metrics(conn)
    except (psycopg.Error, TimeoutError):
        up = 0
    lines += [
        "# HELP odoofleet_postgres_up Whether PostgreSQL answered this scrape.",
        "# TYPE odoofleet_postgres_up gauge",
        f"odoofleet_postgres_up {up}",
    ]
    return "\n".join(lines) + "\n"
