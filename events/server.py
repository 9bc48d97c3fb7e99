"""Events of a server stream (`server-<uuid>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final, Literal

from events.registry import DomainEvent, Upcaster
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
    # Publish instances' host ports on every address of the server, not only 127.0.0.1.
    public_host_ports: bool = False
    # The server's public addresses as its operator gave them (custom domains must point
    # there); None: detected at validation.
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    created_at: datetime

    schema_version: ClassVar[int] = 2


def server_registered_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no publicHostPorts; those servers get the safe default."""
    return {**data, "public_host_ports": False}


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
    # The addresses the server was found to be reachable at (its SSH host when that is an
    # address, else the source address of its default routes); None: not found.
    public_ipv4: str | None = None
    public_ipv6: str | None = None


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
SERVER_UPCASTERS: Final[dict[tuple[str, int], Upcaster]] = {
    ("ServerRegistered", 1): server_registered_v1,
}


def server_stream(server_id: str) -> str:
    return f"server-{server_id}"
