"""A server stream as the sagas see it: how to reach it (credentials opened by the Vault,
the pinned host key), its validation status, and which validations have an outcome."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from events.registry import DomainEvent
from events.secrets import MASK, Vault
from events.server import (
    HostKeyPinned,
    ServerDeleted,
    ServerReachable,
    ServerRegistered,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
    ServerValidationRequested,
    server_stream,
)
from workers.instance_access import Settled
from workers.ssh_connection import ServerConnectionInfo

ServerStatus = Literal["absent", "pending", "active", "unreachable", "error", "deleted"]


class ServerRecord(msgspec.Struct, kw_only=True):
    registered: ServerRegistered | None = None
    pinned: HostKeyPinned | None = None
    status: ServerStatus = "absent"
    message: str | None = None
    validation_requested: bool = False
    outcomes: dict[str, Settled] = msgspec.field(default_factory=dict)

    @property
    def pinned_host_key(self) -> str | None:
        """The key every connection must see: pinned by a validation, or given at
        registration; None until then (the first validation trusts what it sees)."""
        if self.pinned is not None:
            return self.pinned.host_key
        return self.registered.host_key if self.registered is not None else None

    def require(self) -> ServerRegistered:
        if self.registered is None:
            raise LookupError("the server stream has no ServerRegistered")
        return self.registered


def evolve(record: ServerRecord, event: DomainEvent) -> ServerRecord:
    if record.status == "deleted":
        return record
    match event:
        case ServerRegistered():
            record.registered, record.status = event, "pending"
        case ServerValidationRequested():
            record.validation_requested = True
        case HostKeyPinned():
            record.pinned = event
        case ServerValidated():
            record.status, record.message = "active", None
            record.outcomes[event.operation_id] = Settled()
        case ServerValidationFailed():
            record.status, record.message = event.status, event.message
            record.outcomes[event.operation_id] = Settled(True, None, event.message)
        case ServerUnreachable():
            record.status, record.message = "unreachable", event.message
        case ServerReachable() if record.status == "unreachable":
            record.status, record.message = "active", None
        case ServerDeleted():
            record.status = "deleted"
    return record


def fold_server(events: Iterable[DomainEvent]) -> ServerRecord:
    record = ServerRecord()
    for event in events:
        evolve(record, event)
    return record


class ServerSecrets(msgspec.Struct, frozen=True):
    private_key: str | None
    password: str | None

    def values(self) -> list[str | None]:
        return [self.private_key, self.password]

    def __repr__(self) -> str:
        return "ServerSecrets(…)"


async def open_server_secrets(vault: Vault, record: ServerRecord) -> ServerSecrets:
    registered = record.require()
    stream_id = server_stream(registered.server_id)
    key, password = registered.ssh_private_key, registered.ssh_password
    return ServerSecrets(
        private_key=None if key is None else await vault.open(stream_id, key),
        password=None if password is None else await vault.open(stream_id, password),
    )


def connection_info(
    record: ServerRecord, secrets: ServerSecrets, connect_timeout: float
) -> ServerConnectionInfo:
    registered = record.require()
    if MASK in secrets.values():
        # The runner would report a refused key; the truth is that we cannot read ours.
        raise ValueError("the server's credentials were forgotten (its data key is gone)")
    return ServerConnectionInfo(
        server_id=registered.server_id,
        host=registered.host,
        port=registered.port,
        user=registered.ssh_user,
        auth_method=registered.auth_method,
        private_key=secrets.private_key,
        password=secrets.password,
        pinned_host_key=record.pinned_host_key,
        connect_timeout=connect_timeout,
        max_ssh_sessions=registered.max_ssh_sessions,
    )
