"""The health observer's side of a server stream: how to reach the server (its credentials
opened by the Vault, kept while the server's version stands) and the record of an outage,
ServerUnreachable once when it stops answering and ServerReachable once when it answers
again, each appended with the expected version of the stream it was decided on."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from events.errors import WrongExpectedVersion
from events.metadata import EventMetadata
from events.registry import EventRegistry
from events.secrets import Vault
from events.server import ServerReachable, ServerUnreachable, server_stream
from events.store import NO_STREAM, EventStore
from workers.server_access import connection_info, fold_server, open_server_secrets
from workers.ssh_connection import ServerConnectionInfo
from workers.streams import read

Outage = Literal["unreachable", "reachable"]


class ServerLinks:
    def __init__(
        self, store: EventStore, registry: EventRegistry, vault: Vault, connect_timeout: float
    ) -> None:
        self._store, self._registry, self._vault = store, registry, vault
        self._connect_timeout = connect_timeout
        self._known: dict[str, tuple[int, ServerConnectionInfo]] = {}

    async def connection(self, server_id: str, version: int) -> ServerConnectionInfo:
        """How to reach the server whose read-model version is `version`. Raises ValueError
        when its credentials cannot be read, LookupError when it is not registered."""
        known = self._known.get(server_id)
        if known is not None and known[0] == version:
            return known[1]
        stream = await read(self._store, self._registry, server_stream(server_id))
        record = fold_server(stream.events)
        if record.pinned_host_key is None:
            raise ValueError("the server's host key is not pinned: it needs a validation")
        secrets = await open_server_secrets(self._vault, record)
        info = connection_info(record, secrets, self._connect_timeout)
        self._known[server_id] = (version, info)
        return info

    async def record(
        self, server_id: str, outage: Outage, message: str, at: datetime, meta: EventMetadata
    ) -> bool:
        """Record that an active server stopped answering, or that an unreachable one answers
        again; False when its stream says so already (or the server is not active)."""
        stream_id = server_stream(server_id)
        while True:
            stream = await read(self._store, self._registry, stream_id)
            status = fold_server(stream.events).status
            if outage == "unreachable" and status == "active":
                event: ServerUnreachable | ServerReachable = ServerUnreachable(
                    server_id=server_id, message=message, observed_at=at
                )
            elif outage == "reachable" and status == "unreachable":
                event = ServerReachable(server_id=server_id, observed_at=at)
            else:
                return False
            try:
                await self._store.append(stream_id, stream.version or NO_STREAM, [event], meta)
            except WrongExpectedVersion:
                continue  # a validation or another observer wrote meanwhile: decide again
            return True
