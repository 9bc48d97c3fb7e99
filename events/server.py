"""Events of a server stream (`server-<uuid>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from events.registry import DomainEvent
from events.secrets import Sealed

AuthMethod = Literal["key", "password"]
HostKeyTrust = Literal["given", "first-use"]


class ServerRegistered(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    name: str
    host: str
    port: int
    ssh_user: str
    auth_method: AuthMethod
    ssh_private_key: Sealed | None
    ssh_password: Sealed | None
    host_key: str | None
    max_ssh_sessions: int
    created_at: datetime


class ServerValidationRequested(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    operation_id: str


class HostKeyPinned(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    host_key: str
    fingerprint: str
    trust: HostKeyTrust


class ServerValidated(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    operation_id: str
    os_name: str
    os_version: str
    cpu_cores: int
    ram_total_bytes: int
    disk_free_bytes: int
    docker_version: str
    compose_version: str
    validated_at: datetime


class ServerValidationFailed(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    operation_id: str
    status: Literal["unreachable", "error"]
    message: str


class ServerUnreachable(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    message: str
    observed_at: datetime


class ServerReachable(DomainEvent, frozen=True, kw_only=True):
    server_id: str
    observed_at: datetime


class ServerDeleted(DomainEvent, frozen=True, kw_only=True):
    server_id: str


SERVER_EVENTS: tuple[type[DomainEvent], ...] = (
    ServerRegistered,
    ServerValidationRequested,
    HostKeyPinned,
    ServerValidated,
    ServerValidationFailed,
    ServerUnreachable,
    ServerReachable,
    ServerDeleted,
)


def server_stream(server_id: str) -> str:
    return f"server-{server_id}"
