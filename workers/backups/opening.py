"""A destination opened from what its stream records: its settings, and its credentials
opened by the Vault only here, in the worker (or the API's probe) that uses them."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final

import asyncssh
import boto3  # type: ignore[import-untyped]
import msgspec
from botocore.config import Config  # type: ignore[import-untyped]

from events.backup import DestinationKind
from workers.backups.destinations import (
    Destination,
    DestinationError,
    S3Destination,
    SftpDestination,
)
from workers.ssh.connection import Connection, ServerConnectionInfo, open_connection
from workers.ssh.errors import SshError
from workers.ssh.network_policy import AddressNotAllowed, NetworkPolicy

KEEPALIVE: Final = 15.0
DEFAULT_LOCAL_PATH: Final = "/var/backups/odoofleet"


class DestinationSpec(msgspec.Struct, frozen=True, kw_only=True):
    destination_id: str
    kind: DestinationKind
    settings: dict[str, str]
    credentials: dict[str, str]

    def __repr__(self) -> str:
        return f"DestinationSpec({self.destination_id!r}, {self.kind!r})"


async def open_destination(
    spec: DestinationSpec,
    *,
    local_sftp: Callable[[], Awaitable[asyncssh.SFTPClient]] | None,
    policy: NetworkPolicy | None,
    connect_timeout: float = 10.0,
) -> Destination:
    """`local_sftp`: an SFTP session on the server a `local` destination is a directory of
    (the backed-up instance's, on the connection the steps use). DestinationError says why
    it cannot be opened."""
    settings = spec.settings
    try:
        match spec.kind:
            case "local":
                if local_sftp is None:
                    raise DestinationError("a local destination needs the instance's server")
                path = settings.get("path") or DEFAULT_LOCAL_PATH
                return SftpDestination(local_sftp, path, _nothing)
            case "sftp":
                server = ServerConnectionInfo(
                    server_id=f"backupdest-{spec.destination_id}",
                    host=settings["host"],
                    port=int(settings.get("port") or 22),
                    user=settings["user"],
                    auth_method="key" if spec.credentials.get("privateKey") else "password",
                    private_key=spec.credentials.get("privateKey"),
                    password=spec.credentials.get("password"),
                    pinned_host_key=settings["hostKey"],
                    connect_timeout=connect_timeout,
                )
                held = await open_connection(server, KEEPALIVE, policy)
                return SftpDestination(held.conn.start_sftp_client, settings["path"], _closer(held))
            case "s3":
                await _allowed_endpoint(settings.get("endpointUrl"), policy)
                client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=settings.get("endpointUrl") or None,
                    region_name=settings.get("region") or None,
                    aws_access_key_id=settings["accessKeyId"],
                    aws_secret_access_key=spec.credentials["secretAccessKey"],
                    config=Config(
                        connect_timeout=connect_timeout,
                        retries={"max_attempts": 3, "mode": "standard"},
                        s3={"addressing_style": "path"},
                    ),
                )
                return S3Destination(client, settings["bucket"], settings.get("prefix", ""))
    except (SshError, asyncssh.Error, OSError) as e:
        raise DestinationError(str(e)) from e
    except KeyError as e:
        raise DestinationError(f"the destination has no {e.args[0]}") from e


async def _nothing() -> None:
    """The instance's server connection is the runner's: it stays open."""


def _closer(held: Connection) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        held.conn.close()
        await held.conn.wait_closed()

    return close


async def _allowed_endpoint(url: str | None, policy: NetworkPolicy | None) -> None:
    """An endpoint the servers' network policy permits (no metadata or private address a
    tenant could point the control plane at, unless the operator allowed its network)."""
    if not url or policy is None:
        return
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise DestinationError(f"the endpoint URL {url!r} is not an http(s) URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        await policy.resolve(parsed.hostname, port)
    except AddressNotAllowed as e:
        raise DestinationError(f"the endpoint {parsed.hostname} is not allowed: {e}") from e
    except (OSError, TimeoutError) as e:
        raise DestinationError(f"the endpoint {parsed.hostname} does not resolve: {e}") from e
