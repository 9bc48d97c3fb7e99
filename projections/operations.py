"""The operation read model: one saga run with its steps, timings and output excerpts, and
the reads of an instance's operations."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final, Literal

import msgspec

from events.operation import (
    OperationCancelled,
    OperationFailed,
    OperationStarted,
    OperationStepCompleted,
    OperationStepFailed,
    OperationStepStarted,
    OperationSucceeded,
)
from events.secrets import MASK
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, fetch_text

OperationStatus = Literal["pending", "running", "succeeded", "failed", "cancelled"]
StepStatus = Literal["running", "succeeded", "failed"]

EXCERPT_CHARS: Final = 2000
# Output comes from remote commands: mask what looks like a secret before it is stored.
_PEM_KEY: Final = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)
_SECRET_SETTING: Final = re.compile(
    r"(?i)\b([\w.-]*(?:passw(?:or)?d|secret|token|api[_-]?key)[\w.-]*)(\s*[=:]\s*)(\S+)"
)


def excerpt(text: str) -> str:
    """The tail of a command's output (where errors are), at most EXCERPT_CHARS, masked."""
    masked = _SECRET_SETTING.sub(rf"\1\2{MASK}", _PEM_KEY.sub(MASK, text))
    return masked if len(masked) <= EXCERPT_CHARS else "…" + masked[-(EXCERPT_CHARS - 1) :]


class OperationStepView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    status: StepStatus
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: int | None
    output: str | None


class OperationView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    instance_id: str | None
    server_id: str
    type: str
    status: OperationStatus
    started_at: datetime
    completed_at: datetime | None
    error: str | None
    steps: list[OperationStepView]


def started(_: OperationView | None, e: OperationStarted, env: Envelope) -> OperationView:
    return OperationView(
        id=e.operation_id,
        org_id=env.meta.org_id,
        instance_id=e.instance_id,
        server_id=e.server_id,
        type=e.type,
        status="running",
        started_at=env.at,
        completed_at=None,
        error=None,
        steps=[],
        version=env.version,
    )


def _with_step(row: OperationView, name: str, **changes: Any) -> OperationView:
    """The operation with its latest step called `name` changed (added if missing)."""
    steps = list(row.steps)
    for index in range(len(steps) - 1, -1, -1):
        if steps[index].name == name:
            steps[index] = msgspec.structs.replace(steps[index], **changes)
            return msgspec.structs.replace(row, steps=steps)
    fresh = {"started_at": None, "completed_at": None, "duration_ms": None, "output": None}
    steps.append(OperationStepView(name=name, **(fresh | changes)))
    return msgspec.structs.replace(row, steps=steps)


def step_started(
    row: OperationView | None, e: OperationStepStarted, env: Envelope
) -> OperationView:
    current = need(row, env)
    # A retried step starts again: its earlier attempt is replaced, not listed twice.
    steps = [s for s in current.steps if s.name != e.step]
    attempt = OperationStepView(
        name=e.step,
        status="running",
        started_at=env.at,
        completed_at=None,
        duration_ms=None,
        output=None,
    )
    return msgspec.structs.replace(current, steps=[*steps, attempt])


def step_completed(
    row: OperationView | None, e: OperationStepCompleted, env: Envelope
) -> OperationView:
    return _with_step(
        need(row, env),
        e.step,
        status="succeeded",
        completed_at=env.at,
        duration_ms=e.duration_ms,
        output=excerpt(e.output),
    )


def step_failed(row: OperationView | None, e: OperationStepFailed, env: Envelope) -> OperationView:
    output = f"{e.output}\n{e.error}" if e.output else e.error
    return _with_step(
        need(row, env),
        e.step,
        status="failed",
        completed_at=env.at,
        duration_ms=e.duration_ms,
        output=excerpt(output),
    )


def succeeded(row: OperationView | None, _: OperationSucceeded, env: Envelope) -> OperationView:
    return msgspec.structs.replace(need(row, env), status="succeeded", completed_at=env.at)


def failed(row: OperationView | None, e: OperationFailed, env: Envelope) -> OperationView:
    error = e.error if e.step is None else f"{e.step}: {e.error}"
    return msgspec.structs.replace(
        need(row, env), status="failed", completed_at=env.at, error=excerpt(error)
    )


def cancelled(row: OperationView | None, e: OperationCancelled, env: Envelope) -> OperationView:
    return msgspec.structs.replace(
        need(row, env), status="cancelled", completed_at=env.at, error=e.reason
    )


OPERATIONS: Folder[OperationView] = Folder(
    "operation",
    OperationView,
    {
        OperationStarted: started,
        OperationStepStarted: step_started,
        OperationStepCompleted: step_completed,
        OperationStepFailed: step_failed,
        OperationSucceeded: succeeded,
        OperationFailed: failed,
        OperationCancelled: cancelled,
    },
)


_LIST: Final = (
    b"SELECT coalesce(json_agg(o ORDER BY o.started_at DESC, o.id DESC), '[]')::text"
    b" FROM operations o WHERE org_id = %s AND instance_id = %s"
)
_operations: Final = msgspec.json.Decoder(list[OperationView])


async def list_operations(conn: Reader, org_id: str, instance_id: str) -> list[OperationView]:
    """The instance's operations, newest first."""
    return _operations.decode(await fetch_text(conn, _LIST, (org_id, instance_id)) or "[]")
