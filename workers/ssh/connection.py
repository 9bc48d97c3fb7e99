"""Opening one SSH connection to a server: the options, the credentials, host-key pinning,
and the translation of every failure into our own error types (workers/ssh/errors.py)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Literal

import asyncssh
import msgspec

from workers.ssh.errors import (
    AddressRefused,
    AuthenticationFailed,
    HostKeyChanged,
    ServerUnreachable,
    SshError,
)
from workers.ssh.hostkeys import HostKey, host_key_of, parse_host_key, pinned_known_hosts
from workers.ssh.network_policy import AddressNotAllowed, NetworkPolicy

AuthMethod = Literal["key", "password"]


class ServerConnectionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach one server. `pinned_host_key` None means trust on first use."""

    server_id: str
    host: str
    port: int = 22
    user: str
    auth_method: AuthMethod
    private_key: str | None = None
    password: str | None = None
    pinned_host_key: str | None = None
    connect_timeout: float = 10.0
    max_ssh_sessions: int = 4

    def __repr__(self) -> str:
        # Never print the credentials, whatever logs or tracebacks this ends up in.
        return (
            f"ServerConnectionInfo(server_id={self.server_id!r}, "
            f"address={self.address!r}, auth_method={self.auth_method!r})"
        )

    @property
    def address(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


class Connection(msgspec.Struct):
    info: ServerConnectionInfo
    conn: asyncssh.SSHClientConnection
    host_key: HostKey


async def open_connection(
    server: ServerConnectionInfo, keepalive_interval: float, policy: NetworkPolicy | None
) -> Connection:
    """A connection to the server's address that `policy` permits (any with None): resolved
    once, checked, and dialled as that IP, so DNS cannot swap it in between (rebinding)."""
    address = await _address(server, policy)
    options: dict[str, Any] = {
        "host": address,
        "port": server.port,
        "username": server.user,
        "known_hosts": (
            pinned_known_hosts(server.pinned_host_key) if server.pinned_host_key else None
        ),
        # Nothing from the worker's own ~/.ssh (config, keys, agent) may take part.
        "config": [],
        "agent_path": None,
        "gss_host": None,
        "x509_trusted_certs": None,
        "connect_timeout": server.connect_timeout,
        "login_timeout": server.connect_timeout,
        "keepalive_interval": keepalive_interval,
        **_credentials(server),
    }
    try:
        conn = await asyncssh.connect(**options)
    except asyncssh.HostKeyNotVerifiable as e:
        assert server.pinned_host_key is not None
        expected = host_key_of(parse_host_key(server.pinned_host_key)).fingerprint
        seen = await _seen_fingerprint(server, address)
        raise HostKeyChanged(f"{server.host}:{server.port}", expected, seen) from e
    except asyncssh.PermissionDenied as e:
        what = "private key" if server.auth_method == "key" else "password"
        raise AuthenticationFailed(f"{server.address} refused the {what}") from e
    except (TimeoutError, OSError, asyncssh.DisconnectError) as e:
        why = _why(e, server)
        raise ServerUnreachable(f"cannot reach {server.host}:{server.port}: {why}") from e
    key = conn.get_server_host_key()
    if key is None:  # only GSS key exchange has no host key, and it is disabled above
        conn.close()
        raise SshError(f"{server.address} presented no host key")
    return Connection(info=server, conn=conn, host_key=host_key_of(key))


def _credentials(server: ServerConnectionInfo) -> dict[str, Any]:
    if server.auth_method == "key":
        if not server.private_key:
            raise AuthenticationFailed(f"{server.address}: no private key was given")
        try:
            key = asyncssh.import_private_key(server.private_key)
        except (asyncssh.KeyImportError, ValueError) as e:
            # asyncssh's message names the problem, never the key material.
            raise AuthenticationFailed(f"{server.address}: the private key is unusable: {e}") from e
        return {"client_keys": [key], "password": None, "preferred_auth": "publickey"}
    if server.password is None:
        raise AuthenticationFailed(f"{server.address}: no password was given")
    return {
        "client_keys": None,
        "password": server.password,
        "preferred_auth": "password,keyboard-interactive",
    }


async def _address(server: ServerConnectionInfo, policy: NetworkPolicy | None) -> str:
    if policy is None:
        return server.host
    try:
        return await policy.resolve(server.host, server.port)
    except AddressNotAllowed as e:
        raise AddressRefused(f"cannot connect to {server.host}:{server.port}: {e}") from None
    except (TimeoutError, OSError) as e:
        why = _why(e, server)
        raise ServerUnreachable(f"cannot reach {server.host}:{server.port}: {why}") from e


async def _seen_fingerprint(server: ServerConnectionInfo, address: str) -> str | None:
    """The key the server presents now, fetched without authenticating (for the error only)."""
    try:
        key = await asyncio.wait_for(
            asyncssh.get_server_host_key(address, server.port, config=[]),
            server.connect_timeout,
        )
    except (TimeoutError, OSError, asyncssh.Error):
        return None
    return host_key_of(key).fingerprint if key is not None else None


def _why(error: BaseException, server: ServerConnectionInfo) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"host name does not resolve ({error.strerror})"
    if isinstance(error, TimeoutError):
        return f"no answer within {server.connect_timeout:g}s"
    if isinstance(error, asyncssh.DisconnectError):
        return error.reason
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
