"""The restore saga (on RestoreRequested): every part of the backup is read back and checked
against the size and SHA-256 recorded when it was taken (a mismatch refuses the restore before
anything is touched); a restore into the backed-up instance itself takes a safety backup
first; then the app is stopped, the database recreated and restored with pg_restore inside
its db container, the filestore replaced, optionally neutralized (no outgoing mail, no
scheduled actions), the app started, and the result checked (the database answers with its
tables, the filestore is in place, Odoo is ready) before InstanceRestored is recorded. Another
instance's backup brings that instance's Odoo users: before the app starts, the admin user
gets the target's own password and the source's MCP API keys are deleted; once it is ready,
new MCP credentials are asked for. A restore into a new instance first waits for its
provisioning (workers/sagas/restore_new.py)."""

from __future__ import annotations

import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from commands import backup, restore_credentials
from commands.instance_state import Abandoned, Absent, Existing, Removed, Removing
from commands.instance_state import fold as instance_fold
from commands.outcome import FailedAt, Succeeded
from commands.refusals import Refusal
from commands.runner import execute_command, load
from events import backup as backup_events
from events.backup import BackupPart, RestoreRequested, backup_stream
from events.instance import instance_stream
from workers.backups.commands import (
    database_answers_command,
    filestore_files_command,
    neutralize_command,
    recreate_database_command,
    restore_database_command,
    restore_filestore_command,
    revoke_api_user_keys_command,
)
from workers.backups.destinations import Destination
from workers.backups.parts import open_part, verify_part
from workers.backups.remote_stream import stream_in
from workers.runtime.consumer import Deferred
from workers.runtime.slots import OperationLocks
from workers.sagas.backup import take_backup
from workers.sagas.backup_access import (
    data_key,
    destination_of,
    instance_context,
    instance_of,
    load_backup,
)
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.sagas.provision_steps import app_up, ready, write_admin_password
from workers.sagas.readiness import wait_stopped
from workers.sagas.restore_new import PROVISION_STEP, provisioning_verdict
from workers.sagas.runtime import Step, close, last_started_step, resume
from workers.server.commands import stop_command
from workers.server.remote import StepError

TIME_LIMIT: Final = 6 * 3600.0
_SAFETY: Final = uuid.UUID("b0b5a1e2-4c1d-4f7a-9d3e-5a6b7c8d9e0f")


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    event = trigger.event
    assert isinstance(event, RestoreRequested)
    log = OperationLog(deps.store, event.operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    if event.new_instance and not await _new_instance_provisioned(deps, trigger, event, log):
        return
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        await locks.hold(f"instance {event.target_instance_id}", deps.config.lock_timeout)
        await _restore(deps, trigger, event, log, locks)


async def _new_instance_provisioned(
    deps: SagaDeps, trigger: Trigger, event: RestoreRequested, log: OperationLog
) -> bool:
    """True once the new instance is provisioned; Deferred (the message comes back) while it
    is being created; False when the restore failed, recorded, because it never will be."""
    state = await load_backup(deps, event.backup_id)
    if not isinstance(state, backup.Completed) or event.operation_id in state.settled:
        await _close_as(log, deps, event)  # e.g. its create was refused
        return False
    stream_id = instance_stream(event.target_instance_id)
    target = (await load(deps.store, stream_id, instance_fold)).state
    verdict = provisioning_verdict(target, event.requested_at, datetime.now(UTC))
    server_id = "" if isinstance(target, Absent) else target.facts.server_id
    await log.start("restore", event.target_instance_id, server_id, deps.worker)
    if verdict == "waiting":
        raise Deferred(f"the new instance {event.target_instance_id} is not provisioned yet")
    if isinstance(verdict, StepFailed):
        await _settle(deps, trigger, log, event, verdict)
        return False
    return True


async def _restore(
    deps: SagaDeps,
    trigger: Trigger,
    event: RestoreRequested,
    log: OperationLog,
    locks: OperationLocks,
) -> None:
    state = await load_backup(deps, event.backup_id)
    if not isinstance(state, backup.Completed) or event.operation_id in state.settled:
        await _close_as(log, deps, event)
        return
    target = await instance_of(deps, event.target_instance_id)
    await log.start("restore", event.target_instance_id, target.facts.server_id, deps.worker)
    if isinstance(target, Removing | Abandoned | Removed) or target.facts.active_color is None:
        failure = StepFailed("target", "the target instance is not a running instance any more")
        await _settle(deps, trigger, log, event, failure)
        return
    ctx = await instance_context(deps, trigger, log, locks, target)
    source = ctx
    if event.source_instance_id != event.target_instance_id:
        # A `local` destination is a directory of the backed-up instance's server.
        source_instance = await instance_of(deps, event.source_instance_id)
        target_mask = log.mask
        source = await instance_context(deps, trigger, log, locks, source_instance)
        source_mask = log.mask  # the target's secrets stay hidden too (its admin password)
        log.mask = lambda text: source_mask(target_mask(text))
    opened: list[Destination] = []

    async def destination() -> Destination:
        if not opened:
            opened.append(await destination_of(deps, state.requested.destination_id, source))
        return opened[0]

    try:
        key = await data_key(deps, state.requested)
        steps = _steps(ctx, trigger, event, state, target, key, destination)
        await resume(log, steps)
    except StepFailed as e:
        await _settle(deps, trigger, log, event, e)
        return
    except OperationTakenOver:
        return
    finally:
        for held in opened:
            with contextlib.suppress(Exception):
                await held.close()
    await _settle(deps, trigger, log, event, None)


def _steps(
    ctx: InstanceContext,
    trigger: Trigger,
    event: RestoreRequested,
    state: backup.Completed,
    target: Existing,
    key: bytes,
    destination: Callable[[], Awaitable[Destination]],
) -> list[Step]:
    parts = {part.name: part for part in state.parts}
    color = target.facts.active_color
    assert color is not None
    db_name = target.facts.created.db_name

    async def verify() -> str:
        checked = [await verify_part(await destination(), part, key) for part in state.parts]
        return "\n".join(checked)

    async def safety_backup() -> str:
        return await _safety_backup(ctx, trigger, event, state)

    async def stop() -> str:
        stopped = await ctx.remote.check(stop_command(ctx.layout, color))
        return (
            stopped + "\n" + await wait_stopped(ctx.remote, ctx.layout, color, ctx.config.stopping)
        )

    def feed(part: BackupPart) -> Callable[[], AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in open_part(await destination(), part, key):
                yield chunk

        return chunks

    async def restore_database() -> str:
        await ctx.remote.check(recreate_database_command(ctx.layout, db_name))
        command = restore_database_command(ctx.layout, db_name)
        return await stream_in(
            ctx.deps.runner, ctx.remote.server, command, feed(parts["database"])(),
            what="pg_restore", time_limit=TIME_LIMIT,
        )  # fmt: skip

    async def restore_filestore() -> str:
        command = restore_filestore_command(ctx.layout, db_name)
        return await stream_in(
            ctx.deps.runner, ctx.remote.server, command, feed(parts["filestore"])(),
            what="the filestore restore", time_limit=TIME_LIMIT,
        )  # fmt: skip

    async def neutralize() -> str:
        return await ctx.remote.check(neutralize_command(ctx.layout, db_name))

    async def check() -> str:
        tables = await ctx.remote.check(database_answers_command(ctx.layout, db_name))
        files = await ctx.remote.check(filestore_files_command(ctx.layout, db_name))
        if not tables.strip().isdigit() or int(tables.strip()) == 0:
            raise StepError(f"the restored database {db_name} holds no tables ({tables})")
        return f"{db_name}: {tables.strip()} tables; filestore: {files.strip()} files"

    async def provisioned() -> str:
        return f"the new instance {target.facts.slug} is provisioned ({color})"

    async def credentials() -> str:
        return await _own_credentials(ctx, db_name)

    async def mcp_credentials() -> str:
        return await _request_mcp_credentials(ctx, trigger, event)

    same = event.source_instance_id == event.target_instance_id
    return [
        *([Step(PROVISION_STEP, provisioned)] if event.new_instance else []),
        Step("verify", verify),
        *([Step("safety-backup", safety_backup)] if same else []),
        Step("stop", stop),
        Step("restore-database", restore_database),
        Step("restore-filestore", restore_filestore),
        *([Step("neutralize", neutralize)] if event.neutralize else []),
        *([] if same else [Step("credentials", credentials)]),
        Step("start", lambda: app_up(ctx, color)),
        Step("readiness", lambda: ready(ctx, color)),
        Step("check", check),
        *([] if same else [Step("mcp-credentials", mcp_credentials)]),
    ]


async def _own_credentials(ctx: InstanceContext, db_name: str) -> str:
    """Another instance's database holds that instance's Odoo users: before Odoo serves it,
    the admin user gets the target's own password in force (as provisioning sets it, in a
    one-off container) and the MCP API user's keys, the source's, are deleted."""
    revoked = await ctx.remote.check(revoke_api_user_keys_command(ctx.layout, db_name))
    password = ctx.secrets.admin_user_password
    if password is None:  # an instance created before odoofleet generated one
        return f"MCP API keys deleted ({revoked.strip()}); no admin user password recorded"
    written = await write_admin_password(ctx, password, None)
    return f"MCP API keys deleted ({revoked.strip()}); {written.strip()}"


async def _request_mcp_credentials(
    ctx: InstanceContext, trigger: Trigger, event: RestoreRequested
) -> str:
    """The target's MCP credentials issued anew (their own operation, once per restore), now
    that Odoo serves the restored database."""
    command = restore_credentials.RequestMcpCredentialsAfterRestore(
        restore_operation_id=event.operation_id
    )
    try:
        asked = await execute_command(
            ctx.deps.store, instance_stream(event.target_instance_id), instance_fold,
            restore_credentials.decide, command, datetime.now(UTC), trigger.metadata,
            idempotency_key=f"{event.operation_id}/mcp-credentials",
        )  # fmt: skip
    except Refusal as e:
        raise StepError(f"no MCP credentials could be asked for: {e}") from None
    if not asked.events:
        return "no MCP credentials asked for: issued already, or the instance is being removed"
    operation_id = restore_credentials.credentials_operation(event.operation_id)
    return f"new MCP credentials asked for (operation {operation_id})"


async def _safety_backup(
    ctx: InstanceContext, trigger: Trigger, event: RestoreRequested, state: backup.Completed
) -> str:
    """A backup of the instance as it is, to the same destination, before it is overwritten
    (taken here, under this operation's hold on the instance; its own saga then finds it
    done). Its ids derive from the restore, so a resumed restore finds the same one."""
    deps = ctx.deps
    backup_id = str(uuid.uuid5(_SAFETY, f"{event.operation_id}/backup"))
    operation_id = str(uuid.uuid5(_SAFETY, f"{event.operation_id}/operation"))
    stream_id = backup_stream(backup_id)
    sealed = await deps.vault.seal(stream_id, base64.b64encode(os.urandom(32)).decode())
    command = backup.RequestBackup(
        backup_id=backup_id,
        instance_id=event.target_instance_id,
        operation_id=operation_id,
        destination_id=state.requested.destination_id,
        reason="safety",
        data_key=sealed,
    )
    await execute_command(
        deps.store, stream_id, backup.fold, backup.decide, command,
        datetime.now(UTC), trigger.metadata, idempotency_key=f"{operation_id}/requested",
    )  # fmt: skip
    requested = (await load_backup(deps, backup_id)).requested  # type: ignore[union-attr]
    done = await take_backup(deps, trigger.metadata, trigger, requested, ctx.locks)
    if not isinstance(done, backup.Completed):
        why = done.message if isinstance(done, backup.Failed) else done.status
        raise StepError(f"the safety backup {backup_id} failed, nothing was restored: {why}")
    return f"safety backup {backup_id} taken"


async def _settle(
    deps: SagaDeps,
    trigger: Trigger,
    log: OperationLog,
    event: RestoreRequested,
    failure: StepFailed | None,
) -> None:
    command: backup.RecordRestored | backup.RecordRestoreFailed = (
        backup.RecordRestored(operation_id=event.operation_id)
        if failure is None
        else backup.RecordRestoreFailed(
            operation_id=event.operation_id, step=failure.step, message=log.mask(failure.message)
        )
    )
    await execute_command(
        deps.store, backup_stream(event.backup_id), backup.fold, backup.decide,
        command, datetime.now(UTC), trigger.metadata,
        idempotency_key=f"{event.operation_id}/outcome",
    )  # fmt: skip
    with contextlib.suppress(OperationTakenOver):
        await _close_as(log, deps, event)


async def _close_as(log: OperationLog, deps: SagaDeps, event: RestoreRequested) -> None:
    """Close the operation as the backup's stream recorded its outcome."""
    if log.progress.finished:
        return
    for recorded in reversed(await deps.store.read_stream(backup_stream(event.backup_id))):
        outcome = deps.store.decode(recorded)
        if getattr(outcome, "operation_id", None) != event.operation_id:
            continue
        if log.progress.started is None:
            await log.start("restore", event.target_instance_id, "", deps.worker)
        if isinstance(outcome, backup_events.RestoreFailed):
            await close(log, FailedAt(outcome.step, outcome.message))
        elif isinstance(outcome, backup_events.InstanceRestored):
            await close(log, Succeeded())
        else:
            await log.cancel("the backup cannot be restored any more")
        return


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    event = trigger.event
    assert isinstance(event, RestoreRequested)
    log = OperationLog(deps.store, event.operation_id, trigger.metadata)
    await log.load()
    step = last_started_step(log) or "start"
    failure = StepFailed(step, f"gave up after repeated failures: {error}")
    await _settle(deps, trigger, log, event, failure)
