"""Wire DTOs of the read-only resources: health, health score, operations, events, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec


class Health(msgspec.Struct, rename="camel", kw_only=True):
    instance_id: str
    status: Literal["healthy", "degraded", "unhealthy", "unknown"]
    container_state: str | None
    http_status: int | None
    response_time_ms: float | None
    restart_count: Annotated[
        int | None,
        msgspec.Meta(
            description="Times Docker restarted the container serving now (its RestartCount,"
            " as last observed; a new colour starts at 0). The Instance's restartCount is the"
            ' same number (docs/instances.md "Restart counts").'
        ),
    ]
    oom_killed: bool | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    cpu_percent: float | None
    last_seen_at: datetime | None
    last_checked_at: datetime | None
    message: str | None


class ScoreFactor(msgspec.Struct, rename="camel", kw_only=True):
    name: str
    weight: float
    score: float | None
    value: Any
    detail: str | None


class HealthScore(msgspec.Struct, rename="camel", kw_only=True):
    """`score`/`grade` are null while no score has been computed; weights sum to 1."""

    instance_id: str
    score: int | None
    grade: str | None
    updated_at: datetime | None
    factors: list[ScoreFactor]


class OperationStep(msgspec.Struct, rename="camel", kw_only=True):
    name: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    output: str | None


class Operation(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    instance_id: str | None
    type: str
    status: str
    started_at: datetime
    completed_at: datetime | None
    error: str | None
    steps: list[OperationStep]


class OperationList(msgspec.Struct, rename="camel", kw_only=True):
    operations: list[Operation]


class StoredEvent(msgspec.Struct, rename="camel", kw_only=True):
    """An event as stored; `data` and `metadata` keep the event's own field names, with
    every secret masked."""

    position: int
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class EventList(msgspec.Struct, rename="camel", kw_only=True):
    events: list[StoredEvent]


class AuditItem(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    action: str
    resource_type: str
    resource_id: str
    resource_name: str | None
    user_id: str
    user_name: str
    ip_address: str | None
    user_agent: str | None
    before_state: dict[str, Any] | None
    after_state: dict[str, Any] | None
    created_at: datetime
    event_type: str
    position: int
    correlation_id: str


class AuditPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[AuditItem]
    page: int
    per_page: int
    total: int
