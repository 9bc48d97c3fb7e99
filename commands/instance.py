"""Commands of an instance stream and the decider that turns them into events."""

from __future__ import annotations

from datetime import datetime
from typing import Final, TypeAlias, assert_never

import msgspec

from commands.admin_password import RevealAdminCredentials, RotateAdminPassword, reveal, rotate
from commands.env_vars_reveal import RevealEnvVars, reveal_env_vars
from commands.instance_state import (
    Abandoned,
    Absent,
    Creating,
    Failed,
    InstanceFacts,
    InstanceState,
    Removed,
    Removing,
    Restarting,
    Running,
    Starting,
    Stopped,
    Stopping,
)
from commands.mcp_credentials import RotateMcpCredentials, rotate_mcp_credentials
from commands.refusals import (
    ActionNotAllowed,
    InstanceNotFound,
    RemovalNotFailed,
)
from events.instance import (
    CHANGEABLE,
    ActionRequested,
    ControlAction,
    InstanceChanges,
    InstanceCreated,
    InstanceDefinition,
    InstanceRemovalForced,
    InstanceUpdated,
    ProvisioningRequested,
    RedeployRequested,
    RemovalRequested,
    idle_color,
)
from events.registry import DomainEvent
from events.secrets import Sealed

# Of what an update may change (events.instance.CHANGEABLE), what the instance's files on its
# server are rendered from (workers/server/render.py): a change to those must be deployed.
RUNTIME: Final = frozenset({"addons_path", "env_vars"})


class CreateInstance(InstanceDefinition[Sealed], frozen=True, kw_only=True):
    """Everything resolved at the edge and reserved by the create's transaction (the fields:
    events.instance.InstanceDefinition), sealed."""

    operation_id: str


class UpdateInstance(InstanceChanges[Sealed], frozen=True, kw_only=True):
    """Fields left UNSET are not being changed. `env_vars` arrives sealed, and only when the
    edge found the plaintext different from the current values: sealed values never compare
    equal, so the comparison happens where the secrets can be read. `operation_id` names the
    redeploy that a runtime change may need; without one the change is only recorded."""

    operation_id: str | None = None


class ControlInstance(msgspec.Struct, frozen=True, kw_only=True):
    action: ControlAction
    operation_id: str


class DeleteInstance(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    final_backup: bool = True


class ForceRemoval(msgspec.Struct, frozen=True, kw_only=True):
    """End a removal whose teardown failed, without the server's word (DELETE ?force=true)."""


InstanceCommand: TypeAlias = (
    CreateInstance
    | UpdateInstance
    | ControlInstance
    | DeleteInstance
    | ForceRemoval
    | RevealAdminCredentials
    | RotateAdminPassword
    | RotateMcpCredentials
    | RevealEnvVars
)


def decide(command: InstanceCommand, state: InstanceState, now: datetime) -> list[DomainEvent]:
    match command, state:
        case CreateInstance(), Absent():
            return _create(command, now)
        case CreateInstance(), _:
            raise ActionNotAllowed("create", state.status)
        case UpdateInstance(), _:
            return _update(command, state, now)
        case ControlInstance(), _:
            return _control(command, state)
        case DeleteInstance(), _:
            return _delete(command, state)
        case ForceRemoval(), _:
            return _force(state, now)
        case RevealAdminCredentials(), _:
            return reveal(command, state, now)
        case RotateAdminPassword(), _:
            return rotate(command, state)
        case RotateMcpCredentials(), _:
            return rotate_mcp_credentials(command, state)
        case RevealEnvVars(), _:
            return reveal_env_vars(command, state, now)
        case _:
            assert_never(command)


def _create(command: CreateInstance, now: datetime) -> list[DomainEvent]:
    fields = msgspec.structs.asdict(command)
    operation_id = fields.pop("operation_id")
    return [
        InstanceCreated(**fields, created_at=now),
        ProvisioningRequested(
            instance_id=command.instance_id,
            server_id=command.server_id,
            operation_id=operation_id,
        ),
    ]


def _update(command: UpdateInstance, state: InstanceState, now: datetime) -> list[DomainEvent]:
    """A runtime setting reaches the server when an operation starts a colour: its app-up
    step renders the files from the settings the operation read when it began. An instance
    that serves, or is on its way to serving (creating, starting, restarting), read them
    before this change, so a blue/green redeploy follows (one operation per instance at a
    time, so after the one in flight) and brings the change in without downtime. A stopped,
    stopping or failed instance gets none: whatever starts it next reads the change."""
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Removing() | Abandoned():
            raise ActionNotAllowed("update", state.status)
        case Creating() | Running() | Starting() | Restarting():
            return _changes(command, state.facts, now, deploy=True)
        case Stopped() | Stopping() | Failed():
            return _changes(command, state.facts, now, deploy=False)
        case _:
            assert_never(state)


def _changes(
    command: UpdateInstance, facts: InstanceFacts, now: datetime, *, deploy: bool
) -> list[DomainEvent]:
    changes = {
        name: value
        for name in CHANGEABLE
        if (value := getattr(command, name)) is not msgspec.UNSET and value != getattr(facts, name)
    }
    if not changes:
        return []
    updated = InstanceUpdated(instance_id=facts.instance_id, updated_at=now, **changes)
    if not deploy or command.operation_id is None or changes.keys().isdisjoint(RUNTIME):
        return [updated]
    return [updated, _redeploy(facts, command.operation_id)]


def _redeploy(facts: InstanceFacts, operation_id: str) -> DomainEvent:
    target = idle_color(facts.active_color)
    return RedeployRequested(
        instance_id=facts.instance_id, operation_id=operation_id, target_color=target
    )


def _control(command: ControlInstance, state: InstanceState) -> list[DomainEvent]:
    # Allowed: start from stopped or failed; stop from running; restart from running or
    # failed (API.md, "Control body"). Anything else is a 409.
    match command.action, state:
        case "start", Stopped() | Failed():
            return [_requested(command, state.facts)]
        case "stop", Running():
            return [_requested(command, state.facts)]
        case "restart", Running() | Failed():
            return [_requested(command, state.facts)]
        case _, Absent() | Removed():
            raise InstanceNotFound
        case _:
            raise ActionNotAllowed(command.action, state.status)


def _requested(command: ControlInstance, facts: InstanceFacts) -> DomainEvent:
    return ActionRequested(
        instance_id=facts.instance_id, action=command.action, operation_id=command.operation_id
    )


def _delete(command: DeleteInstance, state: InstanceState) -> list[DomainEvent]:
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Removing(failure=None):
            return []
        case Removing() | Abandoned():
            # The last teardown failed: this DELETE tries it again.
            return [_removal(state.facts, command, None)]
        case Creating(provisioning_id=cancels):
            # Delete during creating cancels provisioning (API.md, "Delete").
            return [_removal(state.facts, command, cancels)]
        case Running() | Stopped() | Starting() | Stopping() | Restarting() | Failed():
            return [_removal(state.facts, command, None)]
        case _:
            assert_never(state)


def _removal(facts: InstanceFacts, command: DeleteInstance, cancels: str | None) -> DomainEvent:
    return RemovalRequested(
        instance_id=facts.instance_id,
        operation_id=command.operation_id,
        cancels_operation_id=cancels,
        final_backup=command.final_backup,
    )


def _force(state: InstanceState, now: datetime) -> list[DomainEvent]:
    """Only a removal that failed may be forced: while a teardown runs, or before any
    removal, the server may still hold what only a teardown takes down (docs/instances.md)."""
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Removing(failure=str(failure)) | Abandoned(failure=failure):
            facts = state.facts
            return [
                InstanceRemovalForced(instance_id=facts.instance_id, failure=failure, forced_at=now)
            ]
        case _:
            raise RemovalNotFailed(state.status)
