"""A domain saga's run as an operation of its instance (`GET /api/instances/{id}/operations`):
its id derived from the request it answers, so a redelivery continues the same operation;
steps recorded as they run; closed after the outcome is on the domain's stream."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from events.metadata import EventMetadata
from events.operation import OperationType
from workers.sagas.deps import SagaDeps
from workers.sagas.operation_log import OperationLog, StepFailed

_OPERATIONS = uuid.UUID("5d0c1f7e-2b8a-4c3e-9a61-7f4e2d8b9c10")


def domain_operation_id(kind: OperationType, request_id: str) -> str:
    return str(uuid.uuid5(_OPERATIONS, f"{request_id}/{kind}"))


async def opened(
    deps: SagaDeps, kind: OperationType, request_id: str, metadata: EventMetadata
) -> OperationLog:
    log = OperationLog(deps.store, domain_operation_id(kind, request_id), metadata)
    await log.load()
    return log


async def run_step(log: OperationLog, name: str, run: Callable[[], Awaitable[str]]) -> str:
    """`run` recorded as step `name`; its failure recorded as the step's (StepFailed) and
    raised as it was."""
    failure: list[Exception] = []

    async def recorded() -> str:
        try:
            return await run()
        except Exception as e:
            failure.append(e)
            raise StepFailed(name, str(e)) from e

    try:
        return await log.step(name, recorded)
    except StepFailed:
        raise failure[0] from None


async def close(log: OperationLog, failed_step: str | None, error: str | None) -> None:
    """Close a started operation once its outcome is recorded (nothing to close otherwise)."""
    if log.progress.started is None or log.progress.finished:
        return
    if error is None:
        await log.succeed()
    else:
        await log.fail(failed_step, error)
