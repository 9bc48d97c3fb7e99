"""Small builders of events and metadata for tests."""

from __future__ import annotations

import uuid

from events.metadata import Actor, EventMetadata
from events.operation import OperationStepCompleted


def meta(org: str = "org-a", user: str = "user-1") -> EventMetadata:
    return EventMetadata(
        actor=Actor(id=user, name="Test User"),
        org_id=org,
        correlation_id=str(uuid.uuid4()),
        client_ip="127.0.0.1",
        user_agent="pytest",
    )


def step(n: int, operation_id: str = "op") -> OperationStepCompleted:
    return OperationStepCompleted(
        operation_id=operation_id, step=f"step-{n}", duration_ms=n, output=""
    )
