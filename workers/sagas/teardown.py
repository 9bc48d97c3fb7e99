"""The teardown saga (on RemovalRequested, also while provisioning is still running): route
off, port forwarder, both colours and database down, volumes, network and directory removed,
checked, then the slug and host ports given back (ODOO-HOSTING.md §2.10). Every step accepts
"already gone", so a teardown that died half-way simply runs again.

A failed attempt is recorded (RemovalFailed: the instance stays `removing`) and the worker
tries again by itself after a pause, a few times (SagaConfig.removal_retries); then the
removal is abandoned (RemovalAbandoned: the instance is `failed`, with the reason). Nobody
has to send a DELETE to unstick it; a forced removal meanwhile ends the retries."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from commands.instance_outcomes import (
    REMOVED,
    RecordRemovalAbandoned,
    RecordRemovalAttemptFailed,
    RecordRemoved,
)
from commands.instance_state import Existing, Removed
from commands.refusals import OutcomeOverruled
from commands.reservation import ReleaseReservations
from commands.reservation_release import release_reservations
from events.instance import RemovalRequested, instance_stream
from workers.sagas.backup_final import final_backup_step
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    Cancel,
    InstanceOperation,
    Plan,
    Reaction,
    load_instance,
    record_exhausted,
    record_outcome,
    run_instance_operation,
)
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.sagas.provision_steps import CHECKS
from workers.sagas.remote_steps import AnyStep, RemoteStep, RemoteWork
from workers.sagas.runtime import Step, cancel
from workers.server.commands import (
    app_down_command,
    db_down_command,
    ports_down_command,
    remove_directory_command,
    remove_network_command,
    remove_route_command,
    remove_volumes_command,
    verify_removed_command,
)
from workers.server.layout import InstanceLayout
from workers.server.payload import Payload


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, RemovalRequested)
    return InstanceOperation(
        "teardown", event.operation_id, event.instance_id, lambda state: react(event, state)
    )


def react(event: RemovalRequested, state: Existing) -> Reaction:
    if isinstance(state, Removed):
        return Cancel("the instance is removed already")
    return Plan(
        steps=lambda ctx: _steps(ctx, event),
        succeeded=lambda: RecordRemoved(operation_id=event.operation_id),
        failed=lambda step, message: RecordRemovalAbandoned(
            operation_id=event.operation_id, step=step, message=message
        ),
        retry=lambda ctx, failure: _retry(ctx, event, failure),
    )


async def _retry(ctx: InstanceContext, event: RemovalRequested, failure: StepFailed) -> bool:
    """Record the failed attempt and wait before the next, while retries are left. The
    attempts are counted in the operation's log, so a worker that took over goes on counting."""
    attempt = ctx.log.progress.attempts.get(failure.step, 1)
    pauses = ctx.config.removal_retries
    if attempt > len(pauses):
        return False
    failed = RecordRemovalAttemptFailed(
        operation_id=event.operation_id, step=failure.step, message=ctx.log.mask(failure.message)
    )
    # Each attempt is recorded once: its key names it (a redelivery resumes at a new attempt).
    key = f"{event.operation_id}/attempt-{failure.step}-{attempt}"
    try:
        await record_outcome(ctx.deps, ctx.trigger, event.instance_id, failed, key=key)
        await asyncio.sleep(pauses[attempt - 1])
        if isinstance(await load_instance(ctx.deps, event.instance_id), Removed):
            raise OutcomeOverruled(event.operation_id, f"{REMOVED} (forced)")
    except OutcomeOverruled as e:
        await ctx.log.cancel(e.reason)
        raise OperationTakenOver(e.reason) from e
    return True


async def _steps(ctx: InstanceContext, event: RemovalRequested) -> list[AnyStep]:
    release: list[AnyStep] = [
        Step("release", lambda: _release(ctx)),
        Step("forget-secrets", lambda: _forget(ctx)),
    ]
    if not await _touched_server(ctx):
        return release
    instance_id = ctx.facts.instance_id

    def run(command: Callable[[InstanceLayout], str]) -> Callable[[Payload], RemoteWork]:
        return lambda _: RemoteWork(command(ctx.layout), ctx.config.compose_limit)

    # The steps on the server run as one command, each recorded as it ends (remote_steps.py).
    return [
        # Before anything goes: a failed final backup stops the teardown (docs/backups.md).
        final_backup_step(ctx, event.operation_id, skip=not event.final_backup),
        RemoteStep("remove-route", run(lambda at: remove_route_command(ctx.proxy, at.slug))),
        RemoteStep("ports-down", run(ports_down_command)),
        RemoteStep("app-down-blue", run(lambda layout: app_down_command(layout, "blue"))),
        RemoteStep("app-down-green", run(lambda layout: app_down_command(layout, "green"))),
        RemoteStep("db-down", run(db_down_command)),
        RemoteStep("remove-volumes", run(remove_volumes_command)),
        RemoteStep("remove-network", run(remove_network_command)),
        RemoteStep("remove-directory", run(remove_directory_command)),
        RemoteStep("verify", run(lambda at: verify_removed_command(at, ctx.proxy, instance_id))),
        *release,
    ]


async def _touched_server(ctx: InstanceContext) -> bool:
    """Whether any provisioning got as far as changing the server. If none did (a removal
    while the server was still pending, say), there is nothing to take down over SSH, and a
    server that cannot be reached does not keep the instance from being removed."""
    for operation_id in ctx.facts.provisioning_ops:
        log = OperationLog(ctx.deps.store, operation_id, ctx.trigger.metadata)
        if set((await log.load()).attempts) - CHECKS:
            return True
    return False


async def _release(ctx: InstanceContext) -> str:
    facts = ctx.facts
    command = ReleaseReservations(
        instance_id=facts.instance_id,
        slug=facts.slug,
        subdomain=facts.auto_subdomain,
        server_id=facts.server_id,
    )
    return await release_reservations(ctx.deps.store, command, ctx.trigger.metadata)


async def _forget(ctx: InstanceContext) -> str:
    """Crypto-shred the instance's secrets (env vars, admin and database passwords): once it is
    gone from the server nothing needs them, and a copy of the database or its backups must
    not give them away. Its history stays readable, with those values masked."""
    stream_id = instance_stream(ctx.facts.instance_id)
    if await ctx.deps.vault.forget(stream_id):
        return f"the data key of {stream_id} is deleted: its secrets can no longer be read"
    return f"{stream_id} had no data key left"


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    """Cancel the provisioning first, so it stops at its next step and lets go of the
    instance, which the teardown then waits for."""
    event = trigger.event
    assert isinstance(event, RemovalRequested)
    if event.cancels_operation_id is not None:
        cancelled = OperationLog(deps.store, event.cancels_operation_id, trigger.metadata)
        server_id = (await load_instance(deps, event.instance_id)).facts.server_id
        await cancel(
            cancelled,
            "instance removal requested",
            kind="provision",
            instance_id=event.instance_id,
            server_id=server_id,
            worker=deps.worker,
        )
    await run_instance_operation(deps, trigger, operation(trigger))


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
