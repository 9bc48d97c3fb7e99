"""A destination opened from what its stream records: its settings, and its credentials
opened by the Vault only here, in the worker (or the API's probe) that uses them."""

from __future__ import annotations

from typing import Final

import asyncssh
import boto3
import msgspec
from botocore.config import Config

from events.backup import DestinationKind
from workers.backups.destinations import (
    Destination,
    DestinationError,
    S3Destination,
    SftpDestination,
)
from workers.network_policy import NetworkPolicy
from workers.ssh_connection import ServerConnectionInfo, open_connection
from workers.ssh_errors import SshError

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
    local_server: ServerConnectionInfo | None,
    policy: NetworkPolicy | None,
    connect_timeout: float = 10.0,
) -> Destination:
    """`local_server`: the server a `local` destination is a directory of (the backed-up
    instance's). DestinationError says why it cannot be opened."""
    settings = spec.settings
    try:
        match spec.kind:
            case "local":
                if local_server is None:
                    raise DestinationError("a local destination needs the instance's server")
                held = await open_connection(local_server, KEEPALIVE, policy)
                path = settings.get("path") or DEFAULT_LOCAL_PATH
                return SftpDestination(held.conn, path, owned=True)
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
                return SftpDestination(held.conn, settings["path"], owned=True)
            case "s3":
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
