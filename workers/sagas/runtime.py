"""Running a saga's steps through its operation log, and closing the log however it ends.

`resume` is what lets a worker killed at any moment be replaced: the log skips every step a
run of this operation completed, and a step never completes twice (workers/sagas/operation_log.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import NamedTuple, assert_never

from commands.outcome import FailedAt, OperationOutcome, Succeeded
from events.operation import OperationType
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.server.remote import StepError
from workers.ssh.errors import ServerUnreachable, SshError


class Step(NamedTuple):
    name: str
    run: Callable[[], Awaitable[str]]


async def resume(
    log: OperationLog,
    steps: Sequence[Step],
    *,
    carried: Collection[str] = (),
    retry_unreachable: bool = True,
) -> None:
    """Run the steps not completed yet, in order; `carried` names steps that an earlier
    operation completed for this one (a resumed provisioning), which are not run again."""
    for step in steps:
        if step.name not in carried:
            await log.step(step.name, guarded(step, retry_unreachable))


def guarded(step: Step, retry_unreachable: bool) -> Callable[[], Awaitable[str]]:
    """The step, with what ends it for good turned into StepFailed (recorded, no retry).

    An unreachable server is the one failure worth a redelivery (the consumer retries it a
    bounded number of times), unless the saga's answer to it is a status of its own.
    """

    async def run() -> str:
        try:
            return await step.run()
        except StepError as e:
            raise StepFailed(step.name, str(e)) from e
        except ServerUnreachable as e:
            if retry_unreachable:
                raise
            raise StepFailed(step.name, str(e)) from e
        except SshError as e:
            raise StepFailed(step.name, str(e)) from e

    return run


async def cancel(
    log: OperationLog,
    reason: str,
    *,
    kind: OperationType,
    instance_id: str | None,
    server_id: str,
    worker: str,
) -> None:
    """Cancel the operation, recording its start first if it never started: an operation
    stream always begins with OperationStarted."""
    progress = await log.load()
    if progress.finished:
        return
    if progress.started is None:
        with contextlib.suppress(OperationTakenOver):
            await log.start(kind, instance_id, server_id, worker)
    await log.cancel(reason)


async def close(log: OperationLog, outcome: OperationOutcome) -> None:
    """Mark the operation finished as its recorded outcome says."""
    match outcome:
        case FailedAt(step=step, message=message):
            await log.fail(step, message)
        case Succeeded():
            await log.succeed()
        case _:
            assert_never(outcome)


def last_started_step(log: OperationLog) -> str | None:
    """The step a worker was in when it gave up (for a failure recorded after retries)."""
    progress = log.progress
    pending = [name for name in progress.attempts if name not in progress.completed]
    return pending[-1] if pending else None
