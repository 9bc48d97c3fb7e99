"""Wire DTOs of servers (camelCase JSON, API.md "Servers"); secrets are never sent back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from api.fields import Host, HostKey, Name, Password, Port, PrivateKey, SshSessions, SshUser
from events.server import AuthMethod

PublicHostPorts = Annotated[
    bool,
    msgspec.Meta(
        description="Publish each instance's host ports (httpPortHost, longpollingPortHost) on"
        " every address of the server. By default (false) they listen on 127.0.0.1 only, so"
        " instances are reached through the proxy alone."
    ),
]

PublicIpv4 = Annotated[
    str,
    msgspec.Meta(
        max_length=15,
        description="The server's public IPv4 address, where custom domains' A records must"
        " point. Given at registration it is kept; otherwise the validation detects it (the"
        " SSH host when it is an address, else the source address of the server's default"
        " route).",
        examples=["203.0.113.7"],
    ),
]
PublicIpv6 = Annotated[
    str,
    msgspec.Meta(
        max_length=45,
        description="The server's public IPv6 address (AAAA records); given or detected like"
        " publicIpv4.",
        examples=["2001:db8::7"],
    ),
]


class CreateServerBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """`sshPrivateKey` with authMethod `key`, `sshPassword` with `password`."""

    name: Name
    host: Host
    ssh_user: SshUser
    auth_method: AuthMethod
    port: Port = 22
    ssh_private_key: PrivateKey | None = None
    ssh_password: Password | None = None
    host_key: HostKey | None = None
    max_ssh_sessions: SshSessions = 4
    public_host_ports: PublicHostPorts = False
    public_ipv4: PublicIpv4 | None = None
    public_ipv6: PublicIpv6 | None = None


class Server(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    name: str
    host: str
    port: int
    ssh_user: str
    auth_method: AuthMethod
    status: Literal["pending", "active", "unreachable", "error"]
    status_message: str | None
    host_key_fingerprint: str | None
    os_name: str | None
    os_version: str | None
    cpu_cores: int | None
    ram_total_bytes: int | None
    docker_version: str | None
    max_ssh_sessions: int
    public_host_ports: PublicHostPorts
    public_ipv4: PublicIpv4 | None
    public_ipv6: PublicIpv6 | None
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ServerList(msgspec.Struct, rename="camel", kw_only=True):
    servers: list[Server]
