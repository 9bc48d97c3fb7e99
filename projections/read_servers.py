"""Reading servers of an organization (never their secrets: the read model has none)."""

from __future__ import annotations

from typing import Final

import msgspec

from events.registry import EventRegistry
from events.server import ServerRegistered, server_stream
from events.store import EventStore
from projections.reader import Reader, connection, fetch_text
from projections.servers import ServerView

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


async def with_registration(
    store: EventStore, registry: EventRegistry, views: list[ServerView]
) -> list[ServerView]:
    """The views with the settings only their registration event holds (publicHostPorts),
    read from the first event of each server's stream, all in one query."""
    if not views:
        return views
    found = await store.read_streams({server_stream(view.id): 0 for view in views})
    shown = []
    for view in views:
        first = found[server_stream(view.id)][:1]
        registered = registry.decode_all(first)
        if registered and isinstance(registered[0], ServerRegistered):
            view = msgspec.structs.replace(view, public_host_ports=registered[0].public_host_ports)
        shown.append(view)
    return shown
