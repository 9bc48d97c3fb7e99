"""Events of a health stream (`health-<instance uuid>`), kept apart from the instance stream
so observations never bump the instance's version (its ETag)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from events.registry import DomainEvent

HealthStatus = Literal["healthy", "degraded", "unhealthy", "unknown"]


class HealthWindow(msgspec.Struct, frozen=True, kw_only=True):
    """What was seen since the previous HealthObserved of this instance."""

    started_at: datetime
    probes: int
    failures: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_max_ms: float | None
    restarts: int
    oom_kills: int
    peak_memory_bytes: int | None


class HealthObserved(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    server_id: str
    status: HealthStatus
    container_state: str | None
    http_status: int | None
    response_time_ms: float | None
    restart_count: int | None
    oom_killed: bool | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    cpu_percent: float | None
    message: str
    observed_at: datetime
    window: HealthWindow


HEALTH_EVENTS: tuple[type[DomainEvent], ...] = (HealthObserved,)


def health_stream(instance_id: str) -> str:
    return f"health-{instance_id}"
