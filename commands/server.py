"""The server stream's commands and its decider: the API's (register, validate, delete) and
the outcomes the validation saga, the instance sagas and the health observer record."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias, assert_never

import msgspec

from commands.refusals import ActionNotAllowed, ServerHasInstances, ServerNotFound, ServerNotUsable
from commands.server_state import (
    Absent,
    Active,
    Deleted,
    InError,
    Pending,
    Pinned,
    Registered,
    ServerState,
    Unpinned,
    Unreachable,
)
from events.registry import DomainEvent
from events.secrets import Sealed
from events.server import (
    AuthMethod,
    HostKeyPinned,
    ServerDeleted,
    ServerReachable,
    ServerRegistered,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
    ServerValidationRequested,
)


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
    public_ipv4: str | None = None
    public_ipv6: str | None = None


class ValidateServer(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


class DeleteServer(msgspec.Struct, frozen=True, kw_only=True):
    # Counted from the instances read model by the edge: a decider does no I/O.
    live_instances: int


class PinHostKey(msgspec.Struct, frozen=True, kw_only=True):
    """A validation's first connection saw this key (trust on first use, or the one given)."""

    host_key: str
    fingerprint: str


class RecordServerValidated(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    os_name: str
    os_version: str
    cpu_cores: int
    ram_total_bytes: int
    disk_free_bytes: int
    docker_version: str
    compose_version: str
    public_ipv4: str | None = None
    public_ipv6: str | None = None


class RecordServerValidationFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    status: Literal["unreachable", "error"]
    message: str


class RecordHostKeyChanged(msgspec.Struct, frozen=True, kw_only=True):
    """An instance operation met another host key than the pinned one: the server is in error
    until validated again, so every later operation on it stops too."""

    operation_id: str
    message: str


class MarkServerUnreachable(msgspec.Struct, frozen=True, kw_only=True):
    message: str


class MarkServerReachable(msgspec.Struct, frozen=True, kw_only=True):
    pass


ServerOutcome: TypeAlias = (
    PinHostKey
    | RecordServerValidated
    | RecordServerValidationFailed
    | RecordHostKeyChanged
    | MarkServerUnreachable
    | MarkServerReachable
)
ServerCommand: TypeAlias = RegisterServer | ValidateServer | DeleteServer | ServerOutcome


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
        case _, Absent() | Deleted():
            # An outcome that arrives after the server is gone changes nothing (STYLE #4).
            return []
        case _, Pending() | Active() | Unreachable() | InError():
            return _decide_outcome(command, state, now)
        case _:
            assert_never(command)


def _decide_outcome(command: ServerOutcome, state: Registered, now: datetime) -> list[DomainEvent]:
    """Each outcome is recorded once: a redelivered one, or one the stream already says,
    decides nothing."""
    profile = state.profile
    server_id = profile.server_id
    match command:
        case PinHostKey(host_key=host_key, fingerprint=fingerprint):
            match profile.host_key:
                case Pinned():
                    return []
                case Unpinned(given=given):
                    trust: Literal["given", "first-use"] = "given" if given else "first-use"
                    pin = HostKeyPinned(
                        server_id=server_id, host_key=host_key, fingerprint=fingerprint, trust=trust
                    )
                    return [pin]
                case _:
                    assert_never(profile.host_key)
        case RecordServerValidated():
            if command.operation_id in profile.validations:
                return []
            facts = msgspec.structs.asdict(command)
            return [ServerValidated(server_id=server_id, **facts, validated_at=now)]
        case RecordServerValidationFailed(operation_id=operation_id, status=status):
            if operation_id in profile.validations:
                return []
            failed = ServerValidationFailed(
                server_id=server_id,
                operation_id=operation_id,
                status=status,
                message=command.message,
            )
            return [failed]
        case RecordHostKeyChanged(operation_id=operation_id, message=message):
            if isinstance(state, InError) and state.message == message:
                return []
            failed = ServerValidationFailed(
                server_id=server_id, operation_id=operation_id, status="error", message=message
            )
            return [failed]
        case MarkServerUnreachable(message=message):
            if not isinstance(state, Active):
                return []
            return [ServerUnreachable(server_id=server_id, message=message, observed_at=now)]
        case MarkServerReachable():
            if not isinstance(state, Unreachable):
                return []
            return [ServerReachable(server_id=server_id, observed_at=now)]
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
            return state.profile.server_id
        case _:
            assert_never(state)
