"""What the backup, restore and deletion sagas open: an instance's context (server, layout,
secrets), a backup's destination with its credentials, and a backup's data key."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import asyncssh
import msgspec

from commands import backup, backup_destination
from commands.instance_state import Existing
from commands.runner import load
from events.backup import BackupRequested, backup_stream, destination_stream
from events.secrets import MASK
from workers.backups.destinations import Destination, DestinationError
from workers.backups.opening import DestinationSpec, open_destination
from workers.runtime.slots import OperationLocks
from workers.sagas.context import InstanceContext
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import load_instance
from workers.sagas.instance_spec import open_secrets
from workers.sagas.operation_log import OperationLog
from workers.server.credentials import load_server, open_server_secrets, profile_of
from workers.server.masking import Masker
from workers.server.remote import StepError


async def load_backup(deps: SagaDeps, backup_id: str) -> backup.BackupState:
    return (await load(deps.store, backup_stream(backup_id), backup.fold)).state


async def instance_context(
    deps: SagaDeps,
    trigger: Trigger,
    log: OperationLog,
    locks: OperationLocks,
    instance: Existing,
) -> InstanceContext:
    """The instance's context for steps on its server; the log masks its secrets."""
    facts = instance.facts
    server = profile_of(await load_server(deps.store, facts.server_id))
    secrets = await open_secrets(deps.vault, facts)
    server_secrets = await open_server_secrets(deps.vault, server)
    log.mask = Masker([*secrets.values(), *server_secrets.values()])
    return InstanceContext(deps, trigger, log, locks, facts, secrets, server, server_secrets)


async def instance_of(deps: SagaDeps, instance_id: str) -> Existing:
    return await load_instance(deps, instance_id)


async def data_key(deps: SagaDeps, requested: BackupRequested) -> bytes:
    opened = await deps.vault.open(backup_stream(requested.backup_id), requested.data_key)
    if opened == MASK:
        raise StepError("the backup's data key was erased: its copies cannot be read any more")
    return base64.b64decode(opened)


async def destination_spec(deps: SagaDeps, destination_id: str) -> DestinationSpec:
    stream_id = destination_stream(destination_id)
    state = (await load(deps.store, stream_id, backup_destination.fold)).state
    if not isinstance(state, backup_destination.Active):
        raise StepError(f"the backup destination {destination_id} was deleted")
    created = state.created
    credentials: dict[str, Any] = {}
    if created.credentials is not None:
        opened = await deps.vault.open(stream_id, created.credentials)
        if opened == MASK:
            raise StepError("the backup destination's credentials were erased")
        credentials = msgspec.json.decode(opened)
    return DestinationSpec(
        destination_id=destination_id,
        kind=created.kind,
        settings=created.settings,
        credentials=credentials,
    )


async def destination_of(deps: SagaDeps, destination_id: str, ctx: InstanceContext) -> Destination:
    """The destination, opened for `ctx`'s instance (a `local` one is on its server)."""
    spec = await destination_spec(deps, destination_id)
    ctx.log.mask = _masking(ctx.log, spec)
    remote = ctx.remote

    async def local_sftp() -> asyncssh.SFTPClient:
        # The runner's connection to the instance's server, as every step uses.
        return await remote.runner.open_sftp(remote.server)

    try:
        return await open_destination(
            spec,
            local_sftp=local_sftp,
            policy=remote.runner.policy,
            connect_timeout=ctx.config.connect_timeout,
        )
    except DestinationError as e:
        raise StepError(f"the backup destination cannot be reached: {e}") from e


def _masking(log: OperationLog, spec: DestinationSpec) -> Callable[[str], str]:
    known, secrets = log.mask, Masker(spec.credentials.values())
    return lambda text: secrets(known(text))
