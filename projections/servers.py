"""The server read model: its row (the API's Server object), how events build it, and the
reads of an organization's servers (never their secrets: the read model has none)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

import msgspec

from events.server import (
    HostKeyPinned,
    ServerDeleted,
    ServerReachable,
    ServerRegistered,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
)
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, connection, fetch_text

ServerStatus = Literal["pending", "active", "unreachable", "error"]


class ServerView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    host: str
    port: int
    ssh_user: str
    auth_method: str
    status: ServerStatus
    status_message: str | None
    host_key_fingerprint: str | None
    os_name: str | None
    os_version: str | None
    cpu_cores: int | None
    ram_total_bytes: int | None
    docker_version: str | None
    max_ssh_sessions: int
    # Fixed at registration (there is no event that changes it).
    public_host_ports: bool
    # Where custom domains must point: given at registration (then kept), else the addresses
    # the last validation detected.
    public_ipv4: str | None = None
    public_ipv6: str | None = None
    public_addresses_given: bool = False
    last_seen_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _changed(row: ServerView, env: Envelope, **changes: Any) -> ServerView:
    return msgspec.structs.replace(row, updated_at=env.at, **changes)


def registered(_: ServerView | None, e: ServerRegistered, env: Envelope) -> ServerView:
    return ServerView(
        id=e.server_id,
        org_id=env.meta.org_id,
        name=e.name,
        host=e.host,
        port=e.port,
        ssh_user=e.ssh_user,
        auth_method=e.auth_method,
        status="pending",
        status_message=None,
        host_key_fingerprint=None,
        os_name=None,
        os_version=None,
        cpu_cores=None,
        ram_total_bytes=None,
        docker_version=None,
        max_ssh_sessions=e.max_ssh_sessions,
        public_host_ports=e.public_host_ports,
        public_ipv4=e.public_ipv4,
        public_ipv6=e.public_ipv6,
        public_addresses_given=e.public_ipv4 is not None or e.public_ipv6 is not None,
        last_seen_at=None,
        created_at=e.created_at,
        updated_at=e.created_at,
        version=env.version,
    )


def host_key_pinned(row: ServerView | None, e: HostKeyPinned, env: Envelope) -> ServerView:
    return _changed(need(row, env), env, host_key_fingerprint=e.fingerprint)


def validated(row: ServerView | None, e: ServerValidated, env: Envelope) -> ServerView:
    current = need(row, env)
    given = current.public_addresses_given
    return _changed(
        current,
        env,
        public_ipv4=current.public_ipv4 if given else e.public_ipv4,
        public_ipv6=current.public_ipv6 if given else e.public_ipv6,
        status="active",
        status_message=None,
        os_name=e.os_name,
        os_version=e.os_version,
        cpu_cores=e.cpu_cores,
        ram_total_bytes=e.ram_total_bytes,
        docker_version=e.docker_version,
        last_seen_at=e.validated_at,
    )


def validation_failed(
    row: ServerView | None, e: ServerValidationFailed, env: Envelope
) -> ServerView:
    return _changed(need(row, env), env, status=e.status, status_message=e.message)


def unreachable(row: ServerView | None, e: ServerUnreachable, env: Envelope) -> ServerView:
    return _changed(need(row, env), env, status="unreachable", status_message=e.message)


def reachable(row: ServerView | None, e: ServerReachable, env: Envelope) -> ServerView:
    current = need(row, env)
    # Only an outage ends here: a server still pending (or in error) needs a validation.
    if current.status != "unreachable":
        return _changed(current, env, last_seen_at=e.observed_at)
    return _changed(current, env, status="active", status_message=None, last_seen_at=e.observed_at)


def deleted(row: ServerView | None, _: ServerDeleted, env: Envelope) -> None:
    need(row, env)


SERVERS: Folder[ServerView] = Folder(
    "server",
    ServerView,
    {
        ServerRegistered: registered,
        HostKeyPinned: host_key_pinned,
        ServerValidated: validated,
        ServerValidationFailed: validation_failed,
        ServerUnreachable: unreachable,
        ServerReachable: reachable,
        ServerDeleted: deleted,
    },
)


_GET: Final = b"SELECT to_json(s)::text FROM servers s WHERE org_id = %s AND id = %s"
_LIST: Final = (
    b"SELECT coalesce(json_agg(s ORDER BY s.created_at, s.id), '[]')::text"
    b" FROM servers s WHERE org_id = %s"
)
_LIVE: Final = b"SELECT count(*) FROM instances WHERE org_id = %s AND server_id = %s"

_server: Final = msgspec.json.Decoder(ServerView)
_servers: Final = msgspec.json.Decoder(list[ServerView])


async def get_server(conn: Reader, org_id: str, server_id: str) -> ServerView | None:
    found = await fetch_text(conn, _GET, (org_id, server_id))
    return None if found is None else _server.decode(found)


async def list_servers(conn: Reader, org_id: str) -> list[ServerView]:
    """The organization's servers, oldest first."""
    return _servers.decode(await fetch_text(conn, _LIST, (org_id,)) or "[]")


async def count_live_instances_on_server(conn: Reader, org_id: str, server_id: str) -> int:
    """Instances on the server that are not removed yet (those being removed count: their
    containers are still there)."""
    async with connection(conn) as c:
        cur = await c.execute(_LIVE, (org_id, server_id))
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])
