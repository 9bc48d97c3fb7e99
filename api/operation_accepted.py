"""Answering a command that started an instance operation: 202 with the operation, pending,
and where to follow it (the instance's operations)."""

from __future__ import annotations

from datetime import datetime

from litestar import Response

from api.auth import Principal
from api.services import Services
from api.web import write_headers
from api.wire_reads import Operation
from commands.runner import Outcome
from events.operation import OperationType


def operation_accepted(
    services: Services,
    principal: Principal,
    outcome: Outcome,
    *,
    operation_id: str,
    instance_id: str,
    kind: OperationType,
    requested_at: datetime,
) -> Response[Operation]:
    """The caller's next read waits for the command to be projected (read-your-writes)."""
    services.reads.wrote(principal, outcome.position)
    pending = Operation(
        id=operation_id,
        instance_id=instance_id,
        type=kind,
        status="pending",
        started_at=requested_at,
        completed_at=None,
        error=None,
        steps=[],
    )
    location = f"/api/instances/{instance_id}/operations"
    headers = write_headers(outcome.version, outcome.position, Location=location)
    return Response(pending, status_code=202, headers=headers)
