"""The driver every instance saga runs on. A saga is a process manager: it folds its own
operation stream (workers/sagas/operation_log.py) and reads its instance as the instance's decider
folds it; its `react` chooses from that state (run a plan, or cancel), `run_steps` runs the
steps not completed yet (workers/sagas/remote_steps.py), and the outcome is a command to the
instance's decider, which records it once (docs/saga-outcomes.md)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from commands.instance_outcomes import RecordOutcome, decide_outcome, outcome_of
from commands.instance_state import Absent, Existing, fold
from commands.refusals import OutcomeOverruled
from commands.runner import Outcome, execute_command, load
from commands.server import RecordHostKeyChanged
from commands.server_commands import record_server_outcome
from commands.server_state import ServerProfile
from events.instance import instance_stream
from events.operation import OperationType
from workers.runtime.slots import OperationLocks
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_spec import InstanceSecrets, open_secrets
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.sagas.remote_steps import AnyStep, run_steps
from workers.sagas.runtime import cancel, close, last_started_step
from workers.server.credentials import (
    ServerSecrets,
    load_server,
    open_server_secrets,
    profile_of,
)
from workers.server.masking import Masker
from workers.ssh.errors import HostKeyChanged


@dataclass(frozen=True)
class Plan:
    steps: Callable[[InstanceContext], Awaitable[Sequence[AnyStep]]]
    succeeded: Callable[[], RecordOutcome]
    failed: Callable[[str, str], RecordOutcome]  # (step, message)
    # Earlier operations whose completed steps this one does not run again, except `checks`,
    # which look at the present (a server, a container) and so are always looked at again.
    resume_from: tuple[str, ...] = ()
    checks: frozenset[str] = frozenset()
    # Whether to run the steps again after this failure (having waited as long as it wants);
    # None: a failure is the operation's outcome.
    retry: Callable[[InstanceContext, StepFailed], Awaitable[bool]] | None = None


@dataclass(frozen=True)
class Cancel:
    reason: str


Reaction = Plan | Cancel


@dataclass(frozen=True)
class InstanceOperation:
    kind: OperationType
    operation_id: str
    instance_id: str
    react: Callable[[Existing], Reaction]


class _Opened(NamedTuple):
    instance: Existing
    secrets: InstanceSecrets
    server: ServerProfile
    server_secrets: ServerSecrets


async def run_instance_operation(deps: SagaDeps, trigger: Trigger, op: InstanceOperation) -> None:
    log = OperationLog(deps.store, op.operation_id, trigger.metadata)
    if (await log.load()).finished:
        return  # a redelivery of a finished operation: no SSH work, nothing appended again
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        await locks.hold(f"instance {op.instance_id}", deps.config.lock_timeout)
        opened = await _open(deps, op, log)
        if (await log.load()).finished:
            return
        facts = opened.instance.facts
        settled = facts.outcomes.get(op.operation_id)
        if settled is not None:
            await close(log, settled)  # the outcome landed; the last worker died before this
            return
        reaction = op.react(opened.instance)
        if isinstance(reaction, Cancel):
            await _cancel(deps, log, op, opened.instance, reaction.reason)
            return
        await log.start(op.kind, op.instance_id, facts.server_id, deps.worker)
        ctx = InstanceContext(
            deps, trigger, log, locks, facts, opened.secrets, opened.server, opened.server_secrets
        )
        carried = await _carried(deps, trigger, reaction, op.operation_id)
        steps = await reaction.steps(ctx)
        while True:
            try:
                await run_steps(log, steps, lambda: ctx.remote, carried=carried)
            except StepFailed as e:
                try:
                    if reaction.retry is not None and await reaction.retry(ctx, e):
                        continue  # the completed steps are skipped, the failed one runs again
                except OperationTakenOver:
                    return
                message = log.mask(e.message)
                await _note_host_key_changed(deps, trigger, facts.server_id, op, e)
                await _settle(deps, trigger, log, op, reaction.failed(e.step, message))
                return
            except OperationTakenOver:
                return  # cancelled by a removal, or another worker is on it
            break
        await _settle(deps, trigger, log, op, reaction.succeeded())


async def record_exhausted(
    deps: SagaDeps, trigger: Trigger, op: InstanceOperation, error: BaseException
) -> None:
    """The failure of an operation that kept failing without a recorded step failure."""
    log = OperationLog(deps.store, op.operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    opened = await _open(deps, op, log)
    settled = opened.instance.facts.outcomes.get(op.operation_id)
    if settled is not None:
        await close(log, settled)
        return
    reaction = op.react(opened.instance)
    if isinstance(reaction, Cancel):
        await _cancel(deps, log, op, opened.instance, reaction.reason)
        return
    step = last_started_step(log) or "start"
    message = log.mask(f"gave up after repeated failures: {error}")
    with contextlib.suppress(OperationTakenOver):
        await log.start(op.kind, op.instance_id, opened.instance.facts.server_id, deps.worker)
    await _settle(deps, trigger, log, op, reaction.failed(step, message))


async def record_outcome(
    deps: SagaDeps, trigger: Trigger, instance_id: str, command: RecordOutcome, *, key: str
) -> Outcome:
    """`command` decided by the instance's decider and appended like any write; `key` names
    the append, so a redelivered message sending it again appends nothing twice."""
    return await execute_command(
        deps.store,
        instance_stream(instance_id),
        fold,
        decide_outcome,
        command,
        datetime.now(UTC),
        trigger.metadata,
        idempotency_key=key,
    )


async def load_instance(deps: SagaDeps, instance_id: str) -> Existing:
    """The instance as its decider folds it (a trigger's instance always exists)."""
    state = (await load(deps.store, instance_stream(instance_id), fold)).state
    if isinstance(state, Absent):
        raise LookupError(f"instance {instance_id} has no stream")
    return state


async def _open(deps: SagaDeps, op: InstanceOperation, log: OperationLog) -> _Opened:
    """Load the instance and its server, and open their secrets; the log masks those in all
    it records."""
    instance = await load_instance(deps, op.instance_id)
    server = profile_of(await load_server(deps.store, instance.facts.server_id))
    secrets = await open_secrets(deps.vault, instance.facts)
    server_secrets = await open_server_secrets(deps.vault, server)
    log.mask = Masker([*secrets.values(), *server_secrets.values()])
    return _Opened(instance, secrets, server, server_secrets)


async def _carried(
    deps: SagaDeps, trigger: Trigger, plan: Plan, operation_id: str
) -> frozenset[str]:
    done: set[str] = set()
    for earlier in plan.resume_from:
        if earlier != operation_id:
            log = OperationLog(deps.store, earlier, trigger.metadata)
            done.update((await log.load()).completed)
    return frozenset(done - plan.checks)


async def _settle(
    deps: SagaDeps,
    trigger: Trigger,
    log: OperationLog,
    op: InstanceOperation,
    command: RecordOutcome,
) -> None:
    """The outcome on the instance stream first, as its decider allows (once, and never after
    a removal overtook the operation); then the operation's end, which is what makes a
    redelivery a no-op."""
    key = f"{op.operation_id}/outcome"
    with contextlib.suppress(OperationTakenOver):  # cancelled meanwhile: that stands
        try:
            await record_outcome(deps, trigger, op.instance_id, command, key=key)
        except OutcomeOverruled as e:
            await log.cancel(e.reason)
            return
        await close(log, outcome_of(command))


async def _cancel(
    deps: SagaDeps, log: OperationLog, op: InstanceOperation, instance: Existing, reason: str
) -> None:
    await cancel(
        log,
        reason,
        kind=op.kind,
        instance_id=op.instance_id,
        server_id=instance.facts.server_id,
        worker=deps.worker,
    )


async def _note_host_key_changed(
    deps: SagaDeps, trigger: Trigger, server_id: str, op: InstanceOperation, failure: StepFailed
) -> None:
    """A changed host key puts the server in error: every later operation on it fails too."""
    if not isinstance(failure.__cause__, HostKeyChanged):
        return
    command = RecordHostKeyChanged(operation_id=op.operation_id, message=str(failure.__cause__))
    now = datetime.now(UTC)
    await record_server_outcome(deps.store, server_id, command, now=now, metadata=trigger.metadata)
