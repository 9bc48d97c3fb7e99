"""Events of an operation stream (`operation-<uuid>`): one saga run and its steps."""

from __future__ import annotations

from typing import Literal

from events.registry import DomainEvent

OperationType = Literal[
    "provision",
    "start",
    "stop",
    "restart",
    "teardown",
    "redeploy",
    "validate",
    "rotate-admin-password",
    "mcp-credentials",
    "backup",
    "delete-backup",
    "restore",
    "verify-domain",
    "issue-certificate",
]


class OperationStarted(DomainEvent, frozen=True, kw_only=True):
    operation_id: str
    type: OperationType
    instance_id: str | None
    server_id: str
    worker: str


class OperationStepStarted(DomainEvent, frozen=True, kw_only=True):
    operation_id: str
    step: str
    attempt: int = 1


class OperationStepCompleted(DomainEvent, frozen=True, kw_only=True):
    operation_id: str
    step: str
    duration_ms: int
    output: str


class OperationStepFailed(DomainEvent, frozen=True, kw_only=True):
    operation_id: str
    step: str
    duration_ms: int
    error: str
    output: str


class OperationSucceeded(DomainEvent, frozen=True, kw_only=True):
    operation_id: str


class OperationFailed(DomainEvent, frozen=True, kw_only=True):
    operation_id: str
    step: str | None
    error: str


class OperationCancelled(DomainEvent, frozen=True, kw_only=True):
    operation_id: str
    reason: str


OPERATION_EVENTS: tuple[type[DomainEvent], ...] = (
    OperationStarted,
    OperationStepStarted,
    OperationStepCompleted,
    OperationStepFailed,
    OperationSucceeded,
    OperationFailed,
    OperationCancelled,
)


def operation_stream(operation_id: str) -> str:
    return f"operation-{operation_id}"
