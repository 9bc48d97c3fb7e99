"""Registering the sandbox server once, as the "default" organization's server."""

from __future__ import annotations

import getpass
import uuid
from datetime import UTC, datetime

from commands.server_commands import ServerDraft, register_server
from events.metadata import Actor, EventMetadata
from events.pool import Pool
from events.secrets import Vault
from events.server import server_stream
from events.store import EventStore
from odoofleet.sandbox.server import SandboxServer
from odoofleet.settings import Settings

SANDBOX_NAME = "sandbox (simulated server, no real Odoo)"
LOCAL_DOCKER_NAME = "this machine (local Docker)"


async def ensure_registered(
    settings: Settings, pool: Pool, sandbox: SandboxServer, org: str
) -> str:
    """The sandbox's server id, registering it (and pinning its host key) the first time."""
    id_file = sandbox.base / "server-id"
    store = EventStore(pool)
    if id_file.exists():
        server_id = id_file.read_text().strip()
        if await store.stream_version(server_stream(server_id)) is not None:
            return server_id
    server_id = str(uuid.uuid4())
    draft = ServerDraft(
        server_id=server_id,
        operation_id=str(uuid.uuid4()),
        name=LOCAL_DOCKER_NAME if sandbox.local_docker else SANDBOX_NAME,
        host="127.0.0.1",
        port=sandbox.port,
        ssh_user=_user(),
        auth_method="key",
        ssh_private_key=sandbox.client_private_key,
        ssh_password=None,
        host_key=sandbox.host_key_line,
        max_ssh_sessions=4,
    )
    metadata = EventMetadata(
        actor=Actor(id="system:dev", name="odoofleet dev", kind="system"),
        org_id=org,
        correlation_id=str(uuid.uuid4()),
    )
    await register_server(
        store,
        Vault(pool, settings.secret_key),
        draft,
        now=datetime.now(UTC),
        metadata=metadata,
    )
    id_file.write_text(server_id + "\n")
    return server_id


def _user() -> str:
    return getpass.getuser()
