"""Backups on the sandbox's stand-in docker (what `odoofleet dev --sandbox-server` runs): the
whole flow goes through with real bytes — a dump and a tar of a volume's real files, sealed,
stored, read back and restored — so the walk-through shows it without Docker."""

from __future__ import annotations

from pathlib import Path

from backup_requests import create_destination, request_backup, request_restore
from saga_fixtures import Fleet

from events.backup import (
    BackupCompleted,
    BackupFailed,
    InstanceRestored,
    RestoreFailed,
    backup_stream,
)
from events.instance import InstanceProvisioned, ProvisioningFailed
from events.server import ServerValidated, server_stream


async def test_a_sandbox_instance_is_backed_up_and_restored(fleet: Fleet, tmp_path: Path) -> None:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    acme = await fleet.create_instance(server_id)
    done = await fleet.wait_for(acme.stream, InstanceProvisioned, ProvisioningFailed, timeout=60)
    assert isinstance(done, InstanceProvisioned), done
    files = fleet.sshd.state_dir / "volume-data" / "acme_filestore" / "filestore" / "acme" / "ab"
    files.mkdir(parents=True)
    (files / "abcdef").write_text("an attachment")
    store = tmp_path / "backups"
    destination = await create_destination(fleet.store, fleet.vault, "local", {"path": str(store)})

    backup_id, _ = await request_backup(fleet.store, fleet.vault, acme.id, destination)
    taken = await fleet.wait_for(backup_stream(backup_id), BackupCompleted, BackupFailed)
    assert isinstance(taken, BackupCompleted), taken
    (files / "abcdef").write_text("changed")
    await request_restore(fleet.store, backup_id, acme.id, neutralize=True)
    restored = await fleet.wait_for(
        backup_stream(backup_id), InstanceRestored, RestoreFailed, timeout=60
    )

    assert isinstance(restored, InstanceRestored), restored
    assert (files / "abcdef").read_text() == "an attachment"
    filestore = next(part for part in taken.parts if part.name == "filestore")
    assert filestore.size >= 10240  # a real tar holding the file
