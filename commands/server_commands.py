"""Register, validate and delete a server, and record what sagas and the health observer
concluded about it, through the command runner."""

from __future__ import annotations

from datetime import datetime

import msgspec

from commands.runner import Outcome, execute_command, folder
from commands.server import (
    DeleteServer,
    RegisterServer,
    ServerCommand,
    ServerOutcome,
    ValidateServer,
    decide,
)
from commands.server_state import evolve, initial_state
from events.metadata import EventMetadata
from events.secrets import Vault
from events.server import AuthMethod, server_stream
from events.store import EventStore

_fold = folder(initial_state(), evolve)


class ServerDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A registration as the client sent it, with the new ids; secrets still in plaintext."""

    server_id: str
    operation_id: str
    name: str
    host: str
    port: int
    ssh_user: str
    auth_method: AuthMethod
    ssh_private_key: str | None
    ssh_password: str | None
    host_key: str | None
    max_ssh_sessions: int
    # Instances' host ports on every address of the server; by default only on 127.0.0.1.
    public_host_ports: bool = False
    # Where custom domains must point; None: detected at validation.
    public_ipv4: str | None = None
    public_ipv6: str | None = None


async def register_server(
    store: EventStore,
    vault: Vault,
    draft: ServerDraft,
    *,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    stream_id = server_stream(draft.server_id)
    fields = msgspec.structs.asdict(draft)
    for secret in ("ssh_private_key", "ssh_password"):
        if fields[secret] is not None:
            fields[secret] = await vault.seal(stream_id, fields[secret])
    return await _run(store, draft.server_id, RegisterServer(**fields), now, metadata)


async def validate_server(
    store: EventStore,
    server_id: str,
    *,
    operation_id: str,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    command = ValidateServer(operation_id=operation_id)
    return await _run(store, server_id, command, now, metadata)


async def delete_server(
    store: EventStore,
    server_id: str,
    *,
    live_instances: int,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    command = DeleteServer(live_instances=live_instances)
    return await _run(store, server_id, command, now, metadata)


async def record_server_outcome(
    store: EventStore,
    server_id: str,
    command: ServerOutcome,
    *,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    """What a saga or the health observer concluded about the server, decided on its stream
    (no events when the stream says so already, or the server is gone)."""
    return await _run(store, server_id, command, now, metadata)


async def _run(
    store: EventStore,
    server_id: str,
    command: ServerCommand,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    stream_id = server_stream(server_id)
    return await execute_command(store, stream_id, _fold, decide, command, now, metadata)
