"""A completed backup as Odoo's own zip (workers/backups/odoo_zip.py), for the API: the
database part is turned into plain SQL by `pg_restore -f -` in the instance's db container
(the PostgreSQL of the dump, whatever the control plane has), the filestore part's files
become `filestore/`. Both are read from the destination and opened on the way."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import msgspec

from commands import backup, backup_destination
from commands.instance_state import Existing
from commands.runner import load
from events.backup import backup_stream, destination_stream
from events.secrets import MASK, Vault
from events.store import EventStore
from workers.backups.destinations import Destination
from workers.backups.odoo_zip import odoo_manifest, odoo_zip
from workers.backups.opening import DestinationSpec, open_destination
from workers.backups.parts import open_part
from workers.backups.remote_stream import stream_through
from workers.server.credentials import (
    connection_info,
    load_server,
    open_server_secrets,
    profile_of,
)
from workers.server.layout import InstanceLayout
from workers.ssh.network_policy import NetworkPolicy
from workers.ssh.runner import SshRunner

TIME_LIMIT: Final = 6 * 3600.0


class NotDownloadable(Exception):
    """Why this backup cannot be made into a zip now (its data key erased, its destination
    deleted, its instance's database container gone)."""


async def odoo_download(
    store: EventStore,
    vault: Vault,
    policy: NetworkPolicy,
    state: backup.Completed,
    instance: Existing,
) -> AsyncIterator[bytes]:
    """The zip's bytes; the connections it opens are closed when the iteration ends."""
    requested = state.requested
    key = await vault.open(backup_stream(requested.backup_id), requested.data_key)
    if key == MASK:
        raise NotDownloadable("the backup's data key was erased")
    spec = await _destination_spec(store, vault, requested.destination_id)
    facts = instance.facts
    profile = profile_of(await load_server(store, facts.server_id))
    server = connection_info(profile, await open_server_secrets(vault, profile), 10.0)
    runner = SshRunner(policy=policy)
    destination: Destination | None = None
    try:

        async def local_sftp():  # type: ignore[no-untyped-def]
            return await runner.open_sftp(server)

        destination = await open_destination(spec, local_sftp=local_sftp, policy=policy)
        parts = {part.name: part for part in state.parts}
        data_key = base64.b64decode(key)
        layout = InstanceLayout(facts.slug)
        sql = stream_through(
            runner, server,
            "docker exec -i " + layout.db_container + " pg_restore --no-owner --no-privileges -f -",
            open_part(destination, parts["database"], data_key),
            what="pg_restore", time_limit=TIME_LIMIT,
        )  # fmt: skip
        files = open_part(destination, parts["filestore"], data_key)
        manifest = odoo_manifest(facts.created.db_name, facts.created.odoo_version, "16")
        async for chunk in odoo_zip(sql, files, manifest):
            yield chunk
    finally:
        if destination is not None:
            with contextlib.suppress(Exception):
                await destination.close()
        await runner.close()


async def _destination_spec(
    store: EventStore, vault: Vault, destination_id: str
) -> DestinationSpec:
    stream_id = destination_stream(destination_id)
    state = (await load(store, stream_id, backup_destination.fold)).state
    if not isinstance(state, backup_destination.Active):
        raise NotDownloadable("the backup's destination was deleted")
    created = state.created
    credentials: dict[str, str] = {}
    if created.credentials is not None:
        opened = await vault.open(stream_id, created.credentials)
        if opened == MASK:
            raise NotDownloadable("the destination's credentials were erased")
        credentials = msgspec.json.decode(opened)
    return DestinationSpec(
        destination_id=destination_id,
        kind=created.kind,
        settings=created.settings,
        credentials=credentials,
    )
