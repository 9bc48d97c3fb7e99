"""The server stream: its lifecycle phases, commands and decider."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, TypeAlias, assert_never

import msgspec

from commands.refusals import ActionNotAllowed, ServerHasInstances, ServerNotFound, ServerNotUsable
from events.registry import DomainEvent
from events.secrets import Sealed
from events.server import (
    AuthMethod,
    ServerDeleted,
    ServerReachable,
    ServerRegistered,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
    ServerValidationRequested,
)


class Absent(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "absent"


class Pending(msgspec.Struct, frozen=True):
    """Registered, not validated yet."""

    status: ClassVar[str] = "pending"
    server_id: str


class Active(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "active"
    server_id: str


class Unreachable(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "unreachable"
    server_id: str


class InError(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "error"
    server_id: str
    message: str


class Deleted(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "deleted"
    server_id: str


ServerState: TypeAlias = Absent | Pending | Active | Unreachable | InError | Deleted


class RegisterServer(msgspec.Struct, frozen=True, kw_only=True):
    server_id: str
    operation_id: str
    name: str
    host: str
    port: int
    ssh_user: str
    auth_method: AuthMethod
    ssh_private_key: Sealed | None
    ssh_password: Sealed | None
    host_key: str | None
    max_ssh_sessions: int
    public_host_ports: bool = False


class ValidateServer(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


class DeleteServer(msgspec.Struct, frozen=True, kw_only=True):
    # Counted from the instances read model by the edge: a decider does no I/O.
    live_instances: int


ServerCommand: TypeAlias = RegisterServer | ValidateServer | DeleteServer


def initial_state() -> ServerState:
    return Absent()


def evolve(state: ServerState, event: DomainEvent) -> ServerState:
    if isinstance(state, Absent):
        return Pending(event.server_id) if isinstance(event, ServerRegistered) else state
    if isinstance(state, Deleted):
        return state
    server_id = state.server_id
    match event:
        case ServerValidated():
            return Active(server_id)
        case ServerValidationFailed(status="unreachable") | ServerUnreachable():
            return Unreachable(server_id)
        case ServerValidationFailed(message=message):
            return InError(server_id, message)
        case ServerReachable() if isinstance(state, Unreachable):
            return Active(server_id)
        case ServerDeleted():
            return Deleted(server_id)
        case _:
            return state


def decide(command: ServerCommand, state: ServerState, now: datetime) -> list[DomainEvent]:
    match command, state:
        case RegisterServer(), Absent():
            fields = msgspec.structs.asdict(command)
            operation_id = fields.pop("operation_id")
            return [
                ServerRegistered(**fields, created_at=now),
                ServerValidationRequested(server_id=command.server_id, operation_id=operation_id),
            ]
        case RegisterServer(), _:
            raise ActionNotAllowed("register", state.status)
        case ValidateServer(), _:
            server_id = _existing(state)
            return [
                ServerValidationRequested(server_id=server_id, operation_id=command.operation_id)
            ]
        case DeleteServer(), _:
            server_id = _existing(state)
            if command.live_instances > 0:
                raise ServerHasInstances(server_id, command.live_instances)
            return [ServerDeleted(server_id=server_id)]
        case _:
            assert_never(command)


def ensure_can_host(state: ServerState) -> None:
    """Refuse to place an instance on a server that is unknown, deleted or in error; a server
    still pending validation is accepted (provisioning waits for the validation)."""
    match state:
        case Absent() | Deleted():
            raise ServerNotUsable("not a server of this organization")
        case InError(message=message):
            raise ServerNotUsable(f"the server is in error: {message}")
        case Pending() | Active() | Unreachable():
            return
        case _:
            assert_never(state)


def _existing(state: ServerState) -> str:
    match state:
        case Absent() | Deleted():
            raise ServerNotFound
        case Pending() | Active() | Unreachable() | InError():
            return state.server_id
        case _:
            assert_never(state)
