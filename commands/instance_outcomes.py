"""What a saga concluded about its instance, as commands, and the decider that records each
outcome once (DESIGN.md, "Outcomes"; docs/saga-outcomes.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal, TypeAlias, assert_never

import msgspec

from commands.instance_state import (
    Abandoned,
    Absent,
    Existing,
    InstanceState,
    Removed,
    Removing,
)
from commands.mcp_credentials import requested_after_provisioning
from commands.outcome import FailedAt, OperationOutcome, Succeeded
from commands.refusals import InstanceNotFound, OutcomeOverruled
from events.instance import (
    ActionFailed,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    Color,
    ControlAction,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    McpCredentialsFailed,
    McpCredentialsIssued,
    ProvisioningFailed,
    RemovalAbandoned,
    RemovalFailed,
)
from events.registry import DomainEvent
from events.secrets import Sealed

REMOVING: Final = "the instance is being removed"
REMOVED: Final = "the instance was removed meanwhile"


class RecordProvisioned(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    active_color: Color


class RecordProvisioningFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    step: str
    message: str


class RecordActionSucceeded(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    action: ControlAction


class RecordRedeployed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    active_color: Color


class RecordActionFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    action: ControlAction | Literal["redeploy"]
    step: str
    message: str


class RecordAdminPasswordRotated(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


class RecordAdminPasswordRotationFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    step: str
    message: str


class RecordMcpCredentialsIssued(msgspec.Struct, frozen=True, kw_only=True):
    """The credentials a credentials saga created in Odoo, the key sealed by the worker."""

    operation_id: str
    login: str
    api_key: Sealed


class RecordMcpCredentialsFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    step: str
    message: str


class RecordRemovalAttemptFailed(msgspec.Struct, frozen=True, kw_only=True):
    """One failed attempt of a teardown that will be tried again: no outcome yet."""

    operation_id: str
    step: str
    message: str


class RecordRemovalAbandoned(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    step: str
    message: str


class RecordRemoved(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


LifecycleOutcome: TypeAlias = (
    RecordProvisioned
    | RecordProvisioningFailed
    | RecordActionSucceeded
    | RecordRedeployed
    | RecordActionFailed
    | RecordAdminPasswordRotated
    | RecordAdminPasswordRotationFailed
    | RecordMcpCredentialsIssued
    | RecordMcpCredentialsFailed
)
RemovalOutcome: TypeAlias = RecordRemovalAttemptFailed | RecordRemovalAbandoned | RecordRemoved
RecordOutcome: TypeAlias = LifecycleOutcome | RemovalOutcome


def decide_outcome(
    command: RecordOutcome, state: InstanceState, now: datetime
) -> list[DomainEvent]:
    """An outcome is recorded once: one already recorded for the operation decides nothing
    (a redelivered message, or a worker that died before closing its operation). Only a
    teardown's outcome is taken once removal was asked for."""
    if isinstance(state, Absent):
        raise InstanceNotFound
    if command.operation_id in state.facts.outcomes:
        return []
    match command:
        case (
            RecordProvisioned()
            | RecordProvisioningFailed()
            | RecordActionSucceeded()
            | RecordRedeployed()
            | RecordActionFailed()
            | RecordAdminPasswordRotated()
            | RecordAdminPasswordRotationFailed()
            | RecordMcpCredentialsIssued()
            | RecordMcpCredentialsFailed()
        ):
            if isinstance(state, Removing | Abandoned | Removed):
                raise OutcomeOverruled(command.operation_id, REMOVING)
            return [_lifecycle_event(command, state, now), *_follow_ups(command, state)]
        case RecordRemovalAttemptFailed() | RecordRemovalAbandoned() | RecordRemoved():
            if isinstance(state, Removed):
                raise OutcomeOverruled(command.operation_id, REMOVED)
            if not isinstance(state, Removing | Abandoned):
                raise OutcomeOverruled(command.operation_id, "no removal was asked for")
            return [_removal_event(command, state)]
        case _:
            assert_never(command)


def _lifecycle_event(command: LifecycleOutcome, state: Existing, now: datetime) -> DomainEvent:
    ids = {"instance_id": state.facts.instance_id, "operation_id": command.operation_id}
    match command:
        case RecordProvisioned(active_color=color):
            return InstanceProvisioned(**ids, active_color=color)
        case RecordProvisioningFailed(step=step, message=message):
            return ProvisioningFailed(**ids, step=step, message=message)
        case RecordActionSucceeded(action=action):
            return _action_event(action, ids, now)
        case RecordRedeployed(active_color=color):
            return InstanceRedeployed(**ids, active_color=color)
        case RecordActionFailed(action=action, step=step, message=message):
            return ActionFailed(**ids, action=action, step=step, message=message)
        case RecordAdminPasswordRotated():
            return AdminPasswordRotated(**ids)
        case RecordAdminPasswordRotationFailed(step=step, message=message):
            return AdminPasswordRotationFailed(**ids, step=step, message=message)
        case RecordMcpCredentialsIssued(login=login, api_key=api_key):
            return McpCredentialsIssued(**ids, login=login, api_key=api_key)
        case RecordMcpCredentialsFailed(step=step, message=message):
            return McpCredentialsFailed(**ids, step=step, message=message)
        case _:
            assert_never(command)


def _follow_ups(command: LifecycleOutcome, state: Existing) -> list[DomainEvent]:
    """What an outcome asks for next: a provisioned instance gets its MCP credentials."""
    if isinstance(command, RecordProvisioned):
        return requested_after_provisioning(state.facts, command.operation_id)
    return []


def _action_event(action: ControlAction, ids: dict[str, str], now: datetime) -> DomainEvent:
    match action:
        case "start":
            return InstanceStarted(**ids)
        case "stop":
            return InstanceStopped(**ids)
        case "restart":
            return InstanceRestarted(**ids, restarted_at=now)
        case _:
            assert_never(action)


def _removal_event(command: RemovalOutcome, state: Removing | Abandoned) -> DomainEvent:
    ids = {"instance_id": state.facts.instance_id, "operation_id": command.operation_id}
    match command:
        case RecordRemovalAttemptFailed(step=step, message=message):
            return RemovalFailed(**ids, step=step, message=message)
        case RecordRemovalAbandoned(step=step, message=message):
            return RemovalAbandoned(**ids, step=step, message=message)
        case RecordRemoved():
            return InstanceRemoved(**ids)
        case _:
            assert_never(command)


def outcome_of(command: RecordOutcome) -> OperationOutcome:
    """What the saga's operation ends with once `command` is recorded."""
    match command:
        case (
            RecordProvisioningFailed(step=step, message=message)
            | RecordActionFailed(step=step, message=message)
            | RecordAdminPasswordRotationFailed(step=step, message=message)
            | RecordMcpCredentialsFailed(step=step, message=message)
            | RecordRemovalAttemptFailed(step=step, message=message)
            | RecordRemovalAbandoned(step=step, message=message)
        ):
            return FailedAt(step, message)
        case _:
            return Succeeded()
