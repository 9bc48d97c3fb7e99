"""Reading servers of an organization (never their secrets: the read model has none)."""

from __future__ import annotations

from typing import Final

import msgspec

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
