"""A server stream folded into its lifecycle phase: one small frozen Struct per phase, each
(but Absent) with the server's profile: how to reach it and what its validations concluded."""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import msgspec

from commands.outcome import FailedAt, OperationOutcome, Succeeded
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


class Unpinned(msgspec.Struct, frozen=True):
    """No connection has pinned a host key yet. `given` is the key named at registration, which
    the first validation must see; without one it trusts the first key it sees."""

    given: str | None


class Pinned(msgspec.Struct, frozen=True):
    """The key every connection must see (DESIGN.md "Sagas and the servers")."""

    host_key: str
    fingerprint: str


HostKey: TypeAlias = Unpinned | Pinned


class ServerProfile(msgspec.Struct, frozen=True, kw_only=True):
    """What the decider and the sagas know about a registered server, whatever its phase."""

    server_id: str
    name: str
    host: str
    port: int
    ssh_user: str
    auth_method: AuthMethod
    ssh_private_key: Sealed | None
    ssh_password: Sealed | None
    max_ssh_sessions: int
    public_host_ports: bool
    host_key: HostKey
    # Where custom domains must point (issue 16): given at registration, or else detected by
    # the last validation.
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    public_addresses_given: bool = False
    # A ServerRegistered from before registration always requested a validation asks for one
    # by itself (workers.sagas.validation).
    validation_requested: bool = False
    # The outcome each validation operation recorded, by operation id.
    validations: dict[str, OperationOutcome] = {}


class Absent(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "absent"


class Pending(msgspec.Struct, frozen=True):
    """Registered, not validated yet."""

    status: ClassVar[str] = "pending"
    profile: ServerProfile


class Active(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "active"
    profile: ServerProfile


class Unreachable(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "unreachable"
    profile: ServerProfile
    message: str


class InError(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "error"
    profile: ServerProfile
    message: str


class Deleted(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "deleted"
    profile: ServerProfile


Registered: TypeAlias = Pending | Active | Unreachable | InError
ServerState: TypeAlias = Absent | Registered | Deleted


def initial_state() -> ServerState:
    return Absent()


def evolve(state: ServerState, event: DomainEvent) -> ServerState:
    match state:
        case Absent():
            return Pending(_profile(event)) if isinstance(event, ServerRegistered) else state
        case Deleted():
            return state
        case _:
            return _evolve_registered(state, event)


def _evolve_registered(state: Registered, event: DomainEvent) -> ServerState:
    profile = state.profile
    match event:
        case ServerValidationRequested():
            changed = msgspec.structs.replace(profile, validation_requested=True)
            return msgspec.structs.replace(state, profile=changed)
        case HostKeyPinned(host_key=host_key, fingerprint=fingerprint):
            changed = msgspec.structs.replace(profile, host_key=Pinned(host_key, fingerprint))
            return msgspec.structs.replace(state, profile=changed)
        case ServerValidated(operation_id=operation_id):
            if not profile.public_addresses_given:
                profile = msgspec.structs.replace(
                    profile, public_ipv4=event.public_ipv4, public_ipv6=event.public_ipv6
                )
            return Active(_settled(profile, operation_id, Succeeded()))
        case ServerValidationFailed(operation_id=operation_id, status=status, message=message):
            settled = _settled(profile, operation_id, FailedAt(None, message))
            if status == "unreachable":
                return Unreachable(settled, message)
            return InError(settled, message)
        case ServerUnreachable(message=message):
            return Unreachable(profile, message)
        case ServerReachable() if isinstance(state, Unreachable):
            return Active(profile)
        case ServerDeleted():
            return Deleted(profile)
        case _:
            return state


def _profile(event: ServerRegistered) -> ServerProfile:
    return ServerProfile(
        server_id=event.server_id,
        name=event.name,
        host=event.host,
        port=event.port,
        ssh_user=event.ssh_user,
        auth_method=event.auth_method,
        ssh_private_key=event.ssh_private_key,
        ssh_password=event.ssh_password,
        max_ssh_sessions=event.max_ssh_sessions,
        public_host_ports=event.public_host_ports,
        host_key=Unpinned(event.host_key),
        public_ipv4=event.public_ipv4,
        public_ipv6=event.public_ipv6,
        public_addresses_given=event.public_ipv4 is not None or event.public_ipv6 is not None,
    )


def _settled(profile: ServerProfile, operation_id: str, outcome: OperationOutcome) -> ServerProfile:
    validations = {**profile.validations, operation_id: outcome}
    return msgspec.structs.replace(profile, validations=validations)
