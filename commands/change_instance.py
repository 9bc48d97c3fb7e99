"""Update, control and delete an existing instance through the command runner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from commands.env_vars_reveal import RevealEnvVars
from commands.instance import (
    ControlInstance,
    DeleteInstance,
    InstanceCommand,
    UpdateInstance,
    decide,
)
from commands.instance_state import Absent, InstanceState, Removed, Removing, evolve, initial_state
from commands.runner import Outcome, execute, execute_command, folder
from commands.stream_states import StreamStates
from events.instance import ControlAction, InstanceChanges, instance_stream
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.secrets import Vault
from events.store import EventStore

_fold = folder(initial_state(), evolve)


async def update_instance(
    store: EventStore,
    vault: Vault,
    instance_id: str,
    changes: InstanceChanges[str],
    *,
    operation_id: str,
    now: datetime,
    metadata: EventMetadata,
    if_match: int | None = None,
    states: StreamStates[InstanceState] | None = None,
) -> Outcome:
    """Without `if_match` a lost race is decided again on the fresh state (an update sets
    values, so it is still right then); with it, the client's version no longer holds.
    `operation_id` is the redeploy's, if the change needs one to reach the server.
    `states`: instance states this process remembers (commands.runner.execute)."""
    stream_id = instance_stream(instance_id)

    async def decision(state: InstanceState) -> Sequence[DomainEvent]:
        command = await _sealed(vault, stream_id, changes, state, operation_id)
        return decide(command, state, now)

    return await execute(
        store,
        stream_id,
        _fold,
        decision,
        metadata,
        if_match=if_match,
        retry_on_conflict=if_match is None,
        states=states,
    )


async def _sealed(
    vault: Vault,
    stream_id: str,
    changes: InstanceChanges[str],
    state: InstanceState,
    operation_id: str,
) -> UpdateInstance:
    """The command, with env vars sealed only if their plaintext differs from the current
    values: sealing uses a fresh nonce, so sealed values never compare equal."""
    env_vars = changes.env_vars
    fields = msgspec.structs.asdict(changes)
    del fields["env_vars"]  # sealed below, if it changes
    sealed = UpdateInstance(**fields, operation_id=operation_id)
    if isinstance(env_vars, msgspec.UnsetType) or isinstance(state, Absent | Removed | Removing):
        return sealed  # nothing to seal, or the decider refuses anyway
    if await vault.open_all(stream_id, state.facts.env_vars) == env_vars:
        return sealed
    return msgspec.structs.replace(sealed, env_vars=await vault.seal_all(stream_id, env_vars))


async def control_instance(
    store: EventStore,
    instance_id: str,
    action: ControlAction,
    *,
    operation_id: str,
    now: datetime,
    metadata: EventMetadata,
    states: StreamStates[InstanceState] | None = None,
) -> Outcome:
    command = ControlInstance(action=action, operation_id=operation_id)
    return await _run(store, instance_id, command, now, metadata, states)


async def delete_instance(
    store: EventStore,
    instance_id: str,
    *,
    operation_id: str,
    now: datetime,
    metadata: EventMetadata,
    final_backup: bool = True,
    states: StreamStates[InstanceState] | None = None,
) -> Outcome:
    command = DeleteInstance(operation_id=operation_id, final_backup=final_backup)
    return await _run(store, instance_id, command, now, metadata, states)


async def record_env_vars_revealed(
    store: EventStore,
    instance_id: str,
    *,
    revealed_by: str,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    """Record that `revealed_by` is being shown the envVars values (before showing them)."""
    command = RevealEnvVars(revealed_by=revealed_by)
    return await _run(store, instance_id, command, now, metadata)


async def _run(
    store: EventStore,
    instance_id: str,
    command: InstanceCommand,
    now: datetime,
    metadata: EventMetadata,
    states: StreamStates[InstanceState] | None = None,
) -> Outcome:
    stream_id = instance_stream(instance_id)
    return await execute_command(
        store, stream_id, _fold, decide, command, now, metadata, states=states
    )
