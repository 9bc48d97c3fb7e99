"""What the health observer watches, read from the read models in one query: the servers it
visits (validated, and active or unreachable), the instances on them that should be
running or are stopped on purpose, and each one's last recorded observation."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from events.health import HealthStatus
from projections.runtime.reader import Reader, fetch_text

_LAST: Final = (
    "CASE WHEN h.instance_id IS NULL THEN NULL ELSE json_build_object('status', h.status,"
    " 'last_checked_at', h.last_checked_at, 'container_state', h.container_state,"
    " 'restart_count', h.restart_count, 'oom_killed', h.oom_killed, 'version', h.version) END"
)
_INSTANCES: Final = (
    "SELECT coalesce(json_agg(json_build_object('id', i.id, 'org_id', i.org_id, 'slug', i.slug,"
    " 'status', i.status, 'active_color', i.active_color, 'http_port_host', i.http_port_host,"
    f" 'last', {_LAST}) ORDER BY i.id), '[]')"
    " FROM instances i LEFT JOIN health h ON h.instance_id = i.id"
    " WHERE i.org_id = s.org_id AND i.server_id = s.id AND i.status IN ('running', 'stopped')"
)
_FLEET: Final = (
    "SELECT coalesce(json_agg(json_build_object('id', s.id, 'org_id', s.org_id,"
    f" 'status', s.status, 'version', s.version, 'instances', ({_INSTANCES})) ORDER BY s.id),"
    " '[]')::text FROM servers s"
    # Only servers validated once (a host key pinned, Docker seen): never trust on first use.
    " WHERE s.status IN ('active', 'unreachable') AND s.docker_version IS NOT NULL"
).encode()


class LastObservation(msgspec.Struct, frozen=True, kw_only=True):
    status: HealthStatus
    last_checked_at: datetime
    container_state: str | None
    restart_count: int | None
    oom_killed: bool | None
    version: int


class WatchedInstance(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    slug: str
    status: str  # running or stopped
    active_color: str | None
    http_port_host: int
    last: LastObservation | None


class WatchedServer(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    status: str  # active or unreachable
    version: int
    instances: list[WatchedInstance]


_fleet: Final = msgspec.json.Decoder(list[WatchedServer])


async def load_fleet(reader: Reader) -> list[WatchedServer]:
    return _fleet.decode(await fetch_text(reader, _FLEET, None) or "[]")
