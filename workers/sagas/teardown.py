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
from collections.abc import Awaitable, Callable

from events.instance import (
    InstanceRemoved,
    RemovalAbandoned,
    RemovalFailed,
    RemovalRequested,
    instance_stream,
)
from events.registry import DomainEvent
from workers.instance_access import InstanceRecord, fold_instance, may_remove
from workers.layout import InstanceLayout
from workers.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.reservations import release_reservations
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    Cancel,
    InstanceOperation,
    Plan,
    Reaction,
    record_exhausted,
    run_instance_operation,
)
from workers.sagas.provision_steps import CHECKS
from workers.sagas.runtime import Step, cancel
from workers.server_commands import (
    app_down_command,
    db_down_command,
    ports_down_command,
    remove_directory_command,
    remove_network_command,
    remove_route_command,
    remove_volumes_command,
    verify_removed_command,
)
from workers.streams import append_once, read


def operation(trigger: Trigger) -> InstanceOperation:
    event = trigger.event
    assert isinstance(event, RemovalRequested)

    def react(instance: InstanceRecord) -> Reaction:
        if instance.removed:
            return Cancel("the instance is removed already")
        return Plan(
            steps=_steps,
            succeeded=lambda: _removed(event),
            failed=lambda step, message: [
                RemovalAbandoned(
                    instance_id=event.instance_id,
                    operation_id=event.operation_id,
                    step=step,
                    message=message,
                )
            ],
            allowed=may_remove,
            retry=lambda ctx, failure: _retry(ctx, event, failure),
        )

    return InstanceOperation("teardown", event.operation_id, event.instance_id, react)


async def _retry(ctx: InstanceContext, event: RemovalRequested, failure: StepFailed) -> bool:
    """Record the failed attempt and wait before the next, while retries are left. The
    attempts are counted in the operation's log, so a worker that took over goes on counting."""
    attempt = ctx.log.progress.attempts.get(failure.step, 1)
    pauses = ctx.config.removal_retries
    if attempt > len(pauses):
        return False
    failed = RemovalFailed(
        instance_id=event.instance_id,
        operation_id=event.operation_id,
        step=failure.step,
        message=ctx.log.mask(failure.message),
    )
    stream_id = instance_stream(event.instance_id)
    key = f"{event.operation_id}/attempt-{failure.step}-{attempt}"
    metadata = ctx.trigger.metadata
    store, registry = ctx.deps.store, ctx.deps.registry
    await append_once(store, registry, stream_id, [failed], metadata, key=key, allowed=may_remove)
    await asyncio.sleep(pauses[attempt - 1])
    if not may_remove((await read(store, registry, stream_id)).events):
        await ctx.log.cancel("the instance was removed meanwhile (forced)")
        raise OperationTakenOver("the instance was removed meanwhile")
    return True


def _removed(event: RemovalRequested) -> list[DomainEvent]:
    return [InstanceRemoved(instance_id=event.instance_id, operation_id=event.operation_id)]


async def _steps(ctx: InstanceContext) -> list[Step]:
    release = [Step("release", lambda: _release(ctx)), Step("forget-secrets", lambda: _forget(ctx))]
    if not await _touched_server(ctx):
        return release
    instance_id = ctx.instance.instance_id

    def run(command: Callable[[InstanceLayout], str]) -> Callable[[], Awaitable[str]]:
        return lambda: ctx.remote.check(command(ctx.layout))

    return [
        Step("remove-route", run(lambda layout: remove_route_command(ctx.proxy, layout.slug))),
        Step("ports-down", run(ports_down_command)),
        Step("app-down-blue", run(lambda layout: app_down_command(layout, "blue"))),
        Step("app-down-green", run(lambda layout: app_down_command(layout, "green"))),
        Step("db-down", run(db_down_command)),
        Step("remove-volumes", run(remove_volumes_command)),
        Step("remove-network", run(remove_network_command)),
        Step("remove-directory", run(remove_directory_command)),
        Step("verify", run(lambda layout: verify_removed_command(layout, ctx.proxy, instance_id))),
        *release,
    ]


async def _touched_server(ctx: InstanceContext) -> bool:
    """Whether any provisioning got as far as changing the server. If none did (a removal
    while the server was still pending, say), there is nothing to take down over SSH, and a
    server that cannot be reached does not keep the instance from being removed."""
    for operation_id in ctx.instance.provisioning_ops:
        log = OperationLog(ctx.deps.store, ctx.deps.registry, operation_id, ctx.trigger.metadata)
        if set((await log.load()).attempts) - CHECKS:
            return True
    return False


async def _release(ctx: InstanceContext) -> str:
    return await release_reservations(
        ctx.deps.store,
        ctx.deps.registry,
        ctx.trigger.metadata,
        key=ctx.log.operation_id,
        server_id=ctx.server_id,
        slug=ctx.instance.require().slug,
        subdomain=ctx.instance.require().auto_subdomain,
        instance_id=ctx.instance.instance_id,
    )


async def _forget(ctx: InstanceContext) -> str:
    """Crypto-shred the instance's secrets (env vars, admin and database passwords): once it is
    gone from the server nothing needs them, and a copy of the database or its backups must
    not give them away. Its history stays readable, with those values masked."""
    stream_id = instance_stream(ctx.instance.instance_id)
    if await ctx.deps.vault.forget(stream_id):
        return f"the data key of {stream_id} is deleted: its secrets can no longer be read"
    return f"{stream_id} had no data key left"


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    """Cancel the provisioning first, so it stops at its next step and lets go of the
    instance, which the teardown then waits for."""
    event = trigger.event
    assert isinstance(event, RemovalRequested)
    if event.cancels_operation_id is not None:
        cancelled = OperationLog(
            deps.store, deps.registry, event.cancels_operation_id, trigger.metadata
        )
        server_id = await _server_of(deps, event.instance_id)
        await cancel(
            cancelled,
            "instance removal requested",
            kind="provision",
            instance_id=event.instance_id,
            server_id=server_id,
            worker=deps.worker,
        )
    await run_instance_operation(deps, trigger, operation(trigger))


async def _server_of(deps: SagaDeps, instance_id: str) -> str:
    stream = await read(deps.store, deps.registry, instance_stream(instance_id))
    return fold_instance(stream.events).server_id


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    await record_exhausted(deps, trigger, operation(trigger), error)
