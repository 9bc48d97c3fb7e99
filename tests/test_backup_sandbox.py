"""Backups on the sandbox's stand-in docker (what `odoofleet dev --sandbox-server` runs): the
whole flow goes through with real bytes — a dump and a tar of a volume's real files, sealed,
stored, read back and restored — so the walk-through shows it without Docker."""

from __future__ import annotations

import json
from pathlib import Path

from api_fixtures import client_of, mint, serving
from backup_requests import create_destination, request_backup, request_restore
from saga_fixtures import Fleet, free_host_ports, steps_of

from api.app import create_app
from commands.restore_credentials import credentials_operation
from events.backup import (
    BackupCompleted,
    BackupFailed,
    InstanceRestored,
    RestoreFailed,
    backup_stream,
)
from events.instance import (
    InstanceProvisioned,
    McpCredentialsIssued,
    McpCredentialsRequested,
    ProvisioningFailed,
    instance_stream,
)
from events.operation import OperationStepCompleted, OperationSucceeded, operation_stream
from events.pool import Pool
from events.server import ServerValidated, server_stream
from odoofleet.settings import Settings
from workers.server.layout import InstanceLayout


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
    operation_id = await request_restore(fleet.store, backup_id, acme.id, neutralize=True)
    restored = await fleet.wait_for(
        backup_stream(backup_id), InstanceRestored, RestoreFailed, timeout=60
    )

    assert isinstance(restored, InstanceRestored), restored
    # Its own database again: its credentials hold, nothing is set or asked for anew.
    steps = steps_of(await fleet.operation(operation_id), OperationStepCompleted)
    assert "credentials" not in steps
    assert "mcp-credentials" not in steps
    assert (files / "abcdef").read_text() == "an attachment"
    filestore = next(part for part in taken.parts if part.name == "filestore")
    assert filestore.size >= 10240  # a real tar holding the file


def volume_path(fleet: Fleet, name: str) -> Path:
    return fleet.sshd.state_dir / "volumes" / f"{name}.json"


async def backed_up_acme(fleet: Fleet, tmp_path: Path) -> tuple[str, str]:
    """(server id, backup id): a provisioned instance `acme` with a file in its filestore and
    content in its database, backed up to a local destination."""
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    acme = await fleet.create_instance(server_id)
    done = await fleet.wait_for(acme.stream, InstanceProvisioned, ProvisioningFailed, timeout=120)
    assert isinstance(done, InstanceProvisioned), done
    files = fleet.sshd.state_dir / "volume-data" / "acme_filestore" / "filestore" / "acme" / "ab"
    files.mkdir(parents=True)
    (files / "abcdef").write_text("an attachment")
    acme_db = volume_path(fleet, InstanceLayout("acme").pgdata_volume)
    volume = json.loads(acme_db.read_text())
    acme_db.write_text(json.dumps(volume | {"Contents": {"acme": "the orders of acme"}}))
    destination = await create_destination(
        fleet.store, fleet.vault, "local", {"path": str(tmp_path / "backups")}
    )
    backup_id, _ = await request_backup(fleet.store, fleet.vault, acme.id, destination)
    taken = await fleet.wait_for(
        backup_stream(backup_id), BackupCompleted, BackupFailed, timeout=120
    )
    assert isinstance(taken, BackupCompleted), taken
    return server_id, backup_id


async def restore_into_new(
    settings: Settings, pool: Pool, backup_id: str, server_id: str
) -> tuple[str, str]:
    """(new instance id, operation id) of a neutralized restore into a new instance `copy`,
    asked for through the API."""
    app = create_app(settings.for_api(), pool=pool, host_ports=free_host_ports())
    async with serving(app), client_of(app, mint(settings)) as operator:
        body = {"name": "Copy", "serverId": server_id, "slug": "copy"}
        answer = await operator.post(
            f"/api/backups/{backup_id}/restore", json={"newInstance": body, "neutralize": True}
        )
    assert answer.status_code == 202, answer.text
    return answer.json()["targetInstanceId"], answer.json()["operationId"]


def restored_copy(fleet: Fleet) -> tuple[str, str]:
    """The new instance's file and database content, as the stand-in holds them."""
    copied = fleet.sshd.state_dir / "volume-data" / "copy_filestore" / "filestore" / "copy"
    copy_db = json.loads(volume_path(fleet, InstanceLayout("copy").pgdata_volume).read_text())
    return (copied / "ab" / "abcdef").read_text(), copy_db["Contents"]["copy"]


RESTORE_INTO_NEW_STEPS = [
    "provision", "verify", "stop", "restore-database", "restore-filestore",
    "neutralize", "credentials", "start", "readiness", "check", "mcp-credentials",
]  # fmt: skip


async def test_a_backup_restores_into_a_new_instance_created_for_it_through_the_api(
    fleet: Fleet, tmp_path: Path, settings: Settings, pool: Pool, projections: None
) -> None:
    server_id, backup_id = await backed_up_acme(fleet, tmp_path)

    copy_id, operation_id = await restore_into_new(settings, pool, backup_id, server_id)
    # Its provisioning, a deferral of up to 30 s, then the restore: slow on a loaded machine.
    restored = await fleet.wait_for(
        backup_stream(backup_id), InstanceRestored, RestoreFailed, timeout=300
    )

    assert isinstance(restored, InstanceRestored), restored
    assert restored.target_instance_id == copy_id
    provisioned = await fleet.wait_for(instance_stream(copy_id), InstanceProvisioned)
    assert isinstance(provisioned, InstanceProvisioned)
    assert restored_copy(fleet) == ("an attachment", "the orders of acme")
    ended = await fleet.wait_for(operation_stream(operation_id), OperationSucceeded)
    assert isinstance(ended, OperationSucceeded)
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepCompleted) == RESTORE_INTO_NEW_STEPS
    [credentials] = [
        e for e in operation if isinstance(e, OperationStepCompleted) and e.step == "credentials"
    ]
    assert "the password of the admin user of copy is set" in credentials.output
    # The copy's MCP credentials issued again, once, after those of its first provisioning.
    reissue = credentials_operation(operation_id)
    await fleet.wait_ended(reissue, timeout=120)
    copy_events = await fleet.events(instance_stream(copy_id))
    asked = [e.operation_id for e in copy_events if isinstance(e, McpCredentialsRequested)]
    issued = [e.operation_id for e in copy_events if isinstance(e, McpCredentialsIssued)]
    assert len(asked) == 2
    assert asked[-1] == reissue
    assert issued.count(reissue) == 1


async def test_a_restore_into_a_new_instance_whose_provisioning_fails_fails_with_the_reason(
    fleet: Fleet, tmp_path: Path, settings: Settings, pool: Pool, projections: None
) -> None:
    server_id, backup_id = await backed_up_acme(fleet, tmp_path)
    fleet.sshd.arm("compose-up-db")

    copy_id, operation_id = await restore_into_new(settings, pool, backup_id, server_id)
    failed = await fleet.wait_for(
        backup_stream(backup_id), InstanceRestored, RestoreFailed, timeout=300
    )

    assert isinstance(failed, RestoreFailed), failed
    assert (failed.target_instance_id, failed.step) == (copy_id, "provision")
    assert failed.message.startswith("the new instance's provisioning failed: ")
    provisioning = await fleet.wait_for(instance_stream(copy_id), ProvisioningFailed)
    assert isinstance(provisioning, ProvisioningFailed)
    assert provisioning.message in failed.message
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepCompleted) == []
