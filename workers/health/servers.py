"""The health observer's side of a server stream: how to reach the server (its credentials
opened by the Vault, kept while the server's version stands), and what a visit concludes about
it — MarkServerUnreachable once when an active server stops answering, MarkServerReachable
once when it answers again — for the server's decider to record (commands.server)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypeAlias

from commands.refusals import ConcurrentModification
from commands.server import MarkServerReachable, MarkServerUnreachable
from commands.server_commands import record_server_outcome
from events.metadata import EventMetadata
from events.secrets import Vault
from events.store import EventStore
from workers.server.credentials import (
    connection_info,
    load_server,
    open_server_secrets,
    pinned_host_key,
    profile_of,
)
from workers.ssh.connection import ServerConnectionInfo

log = logging.getLogger(__name__)

Outage: TypeAlias = MarkServerUnreachable | MarkServerReachable


def outage_command(status: str, unreachable: bool, failure: str) -> Outage | None:
    """What one visit says of a server whose read-model status is `status`: a command only
    when the visit contradicts it, so an unchanged cycle decides nothing and reads nothing."""
    if unreachable and status == "active":
        return MarkServerUnreachable(message=failure)
    if not unreachable and status == "unreachable":
        return MarkServerReachable()
    return None


class ServerLinks:
    def __init__(self, store: EventStore, vault: Vault, connect_timeout: float) -> None:
        self._store, self._vault = store, vault
        self._connect_timeout = connect_timeout
        self._known: dict[str, tuple[int, ServerConnectionInfo]] = {}

    async def connection(self, server_id: str, version: int) -> ServerConnectionInfo:
        """How to reach the server whose read-model version is `version`. Raises ValueError
        when its credentials cannot be read, LookupError when it is not registered."""
        known = self._known.get(server_id)
        if known is not None and known[0] == version:
            return known[1]
        profile = profile_of(await load_server(self._store, server_id))
        if pinned_host_key(profile) is None:
            raise ValueError("the server's host key is not pinned: it needs a validation")
        secrets = await open_server_secrets(self._vault, profile)
        info = connection_info(profile, secrets, self._connect_timeout)
        self._known[server_id] = (version, info)
        return info

    async def record(
        self, server_id: str, outage: Outage, at: datetime, metadata: EventMetadata
    ) -> None:
        """Decided on the server's stream, which may say so already (another observer for a
        moment, or a validation meanwhile): then nothing is appended."""
        try:
            await record_server_outcome(self._store, server_id, outage, now=at, metadata=metadata)
        except ConcurrentModification:
            log.warning("health observer: server %s kept changing; next cycle decides", server_id)
