"""Backups and restores end to end on the real-Docker tier: a running instance with data in
its database and filestore is backed up to a directory of its server, changed, restored, and
shows the original data; a damaged backup is refused; a restore goes into another instance,
and into a new instance created for it on another server."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import pytest_asyncio
from backup_requests import create_destination, request_backup, request_restore
from realdocker_fixtures import (  # noqa: F401
    DockerFleet,
    docker_engine_fixture,
    docker_fleet_fixture,
    docker_server_fixture,
)
from realdocker_probes import docker
from saga_fixtures import Instance
from sshd_harness import free_port
from test_backup_sandbox import restore_into_new
from test_realdocker_sagas import provision, validated_server

from commands import backup
from commands.instance_state import Absent, Existing
from commands.instance_state import fold as instance_fold
from commands.restore_credentials import credentials_operation
from commands.runner import load
from events.backup import (
    BackupCompleted,
    BackupFailed,
    BackupRequested,
    InstanceRestored,
    RestoreFailed,
    backup_stream,
)
from events.instance import (
    InstanceProvisioned,
    McpCredentialsFailed,
    McpCredentialsIssued,
    instance_stream,
)
from events.pool import Pool
from workers.backups.download import odoo_download
from workers.server.layout import InstanceLayout

pytestmark = pytest.mark.realdocker


async def psql(fleet: DockerFleet, instance: Instance, sql: str) -> str:
    layout = InstanceLayout(instance.slug)
    db = instance.slug.replace("-", "_")  # the fixture's db_name
    return await docker(
        fleet.sshd.engine, "exec", layout.db_container, "psql", "-U", "odoo", "-d", db, "-tAc", sql
    )


async def filestore(fleet: DockerFleet, instance: Instance, script: str) -> str:
    layout = InstanceLayout(instance.slug)
    return await docker(fleet.sshd.engine, "exec", layout.app_container("blue"), "sh", "-c", script)


FILE = "/var/lib/odoo/filestore/acme/ab/abcdef"


async def odoo_zip_of(fleet: DockerFleet, backup_id: str, instance: Instance) -> zipfile.ZipFile:
    store = fleet.store
    state = (await load(store, backup_stream(backup_id), backup.fold)).state
    assert isinstance(state, backup.Completed)
    target = (await load(store, instance_stream(instance.id), instance_fold)).state
    assert not isinstance(target, Absent)
    policy = fleet.settings.server_addresses()
    chunks = odoo_download(store, fleet.vault, policy, state, target)
    return zipfile.ZipFile(io.BytesIO(b"".join([chunk async for chunk in chunks])))


async def outcome_of(
    fleet: DockerFleet, backup_id: str, operation_id: str
) -> InstanceRestored | RestoreFailed:
    """The outcome of one restore of the backup (the stream holds every restore's)."""
    await fleet.wait_ended(operation_id, timeout=240)
    outcomes = [
        e
        for e in await fleet.events(backup_stream(backup_id))
        if isinstance(e, InstanceRestored | RestoreFailed) and e.operation_id == operation_id
    ]
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


async def logs_in(fleet: DockerFleet, container: str, db: str, login: str, password: str) -> bool:
    """Whether Odoo in `container` takes the password (or RPC API key) for `login`."""
    call = {"service": "common", "method": "login", "args": [db, login, password]}
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": call})
    answer = await docker(
        fleet.sshd.engine, "exec", container, "curl", "-s", "-H",
        "Content-Type: application/json", "--data-binary", body, "http://localhost:8069/jsonrpc",
    )  # fmt: skip
    uid = json.loads(answer)["result"]
    return uid is not False


async def mcp_key_of(fleet: DockerFleet, instance: Existing) -> str:
    credentials = instance.facts.mcp_credentials
    assert credentials is not None
    return await fleet.vault.open(instance_stream(instance.facts.instance_id), credentials.api_key)


@pytest_asyncio.fixture
async def acme(docker_fleet: DockerFleet) -> Instance:
    server_id = await validated_server(docker_fleet)
    instance, _ = await provision(docker_fleet, server_id, "acme")
    return instance


# One provisioned instance serves every restore (real Docker is slow): into itself, into
# another instance neutralized, and a damaged backup refused.
async def test_a_backup_restores_into_itself_and_another_neutralized_and_a_damaged_one_is_refused(
    docker_fleet: DockerFleet, acme: Instance, tmp_path: Path
) -> None:
    fleet = docker_fleet
    await psql(fleet, acme, "INSERT INTO res_partner (name) VALUES ('Original Partner')")
    await filestore(fleet, acme, f"mkdir -p $(dirname {FILE}) && echo original > {FILE}")
    store = tmp_path / "backups"
    destination = await create_destination(fleet.store, fleet.vault, "local", {"path": str(store)})

    backup_id, _ = await request_backup(fleet.store, fleet.vault, acme.id, destination)
    done = await fleet.wait_for(
        backup_stream(backup_id), BackupCompleted, BackupFailed, timeout=120
    )
    assert isinstance(done, BackupCompleted), done
    assert [part.name for part in done.parts] == ["database", "filestore", "manifest"]
    stored = sorted(p.name for p in (store / acme.id / backup_id).iterdir())
    assert stored == ["database.dump.ofb", "filestore.tar.ofb", "manifest.json.ofb"]
    for part in done.parts:
        assert (store / part.key).stat().st_size == part.stored_size
        # Encrypted at rest: the dump's own header (PGDMP) is nowhere in the stored object.
        assert b"PGDMP" not in (store / part.key).read_bytes()

    # Odoo's own zip of it: dump.sql (plain SQL by pg_restore), filestore/, manifest.json.
    odoo = await odoo_zip_of(fleet, backup_id, acme)
    assert sorted(odoo.namelist()) == ["dump.sql", "filestore/ab/abcdef", "manifest.json"]
    assert b"Original Partner" in odoo.read("dump.sql")
    assert odoo.read("filestore/ab/abcdef") == b"original\n"
    assert json.loads(odoo.read("manifest.json"))["db_name"] == "acme"

    # A destination that is down fails the backup with the step and the reason.
    down = await create_destination(
        fleet.store, fleet.vault, "sftp",
        {"host": "127.0.0.1", "port": str(free_port()), "user": "root", "path": "/backups",
         "hostKey": fleet.sshd.host_key_line},
        {"privateKey": fleet.sshd.client_private_key},
    )  # fmt: skip
    failing, _ = await request_backup(fleet.store, fleet.vault, acme.id, down)
    failed = await fleet.wait_for(backup_stream(failing), BackupCompleted, BackupFailed, timeout=60)
    assert isinstance(failed, BackupFailed), failed
    assert failed.step == "database"
    assert "backup destination cannot be reached" in failed.message

    await psql(
        fleet, acme, "UPDATE res_partner SET name = 'Changed' WHERE name = 'Original Partner'"
    )
    await filestore(fleet, acme, f"echo changed > {FILE}")
    assert await psql(fleet, acme, "SELECT count(*) FROM res_partner WHERE name = 'Changed'") == "1"

    operation_id = await request_restore(fleet.store, backup_id, acme.id)
    restored = await fleet.wait_for(
        backup_stream(backup_id), InstanceRestored, RestoreFailed, timeout=240
    )
    assert isinstance(restored, InstanceRestored), (restored, await fleet.operation(operation_id))
    names = "SELECT name FROM res_partner WHERE name IN ('Original Partner', 'Changed')"
    assert await psql(fleet, acme, names) == "Original Partner"
    assert await filestore(fleet, acme, f"cat {FILE}") == "original"
    # The safety backup taken first holds the changed data, in a backup of its own.
    safety = [path.name for path in (store / acme.id).iterdir() if path.name != backup_id]
    assert len(safety) == 1
    requested = (await fleet.events(backup_stream(safety[0])))[0]
    assert isinstance(requested, BackupRequested)
    assert requested.reason == "safety"

    # Into another instance, neutralized; the source is left as it was.
    beta, _ = await provision(fleet, acme.server_id, "beta")
    into_beta = await request_restore(fleet.store, backup_id, beta.id, neutralize=True)
    restored = await outcome_of(fleet, backup_id, into_beta)
    assert isinstance(restored, InstanceRestored), (restored, await fleet.operation(into_beta))
    assert restored.target_instance_id == beta.id
    count = "SELECT count(*) FROM res_partner WHERE name = 'Original Partner'"
    assert await psql(fleet, beta, count) == "1"
    beta_file = FILE.replace("/acme/", "/beta/")
    assert await filestore(fleet, beta, f"cat {beta_file}") == "original"
    neutralized = "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'"
    assert await psql(fleet, beta, neutralized) == "true"
    assert await psql(fleet, acme, neutralized) == ""

    # A damaged part: refused at `verify`, the target unchanged.
    await psql(fleet, beta, "INSERT INTO res_partner (name) VALUES ('After the restore')")
    dump = store / done.parts[0].key
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    damaged = await request_restore(fleet.store, backup_id, beta.id)
    failed = await outcome_of(fleet, backup_id, damaged)
    assert isinstance(failed, RestoreFailed), failed
    assert failed.step == "verify"
    assert "database part is damaged" in failed.message
    after = "SELECT count(*) FROM res_partner WHERE name = 'After the restore'"
    assert await psql(fleet, beta, after) == "1"


async def test_a_backup_restores_into_a_new_instance_on_another_server(
    docker_fleet: DockerFleet, acme: Instance, tmp_path: Path, pool: Pool, projections: None
) -> None:
    """The other server is a second registration of the tier's one engine (the harness has
    one): its own server id, validated on its own; the proxy is the engine's one."""
    fleet = docker_fleet
    # The source's MCP key is in the backed-up database.
    issued = await fleet.wait_for(acme.stream, McpCredentialsIssued, McpCredentialsFailed)
    assert isinstance(issued, McpCredentialsIssued), issued
    await psql(fleet, acme, "INSERT INTO res_partner (name) VALUES ('Original Partner')")
    await filestore(fleet, acme, f"mkdir -p $(dirname {FILE}) && echo original > {FILE}")
    destination = await create_destination(
        fleet.store, fleet.vault, "local", {"path": str(tmp_path / "backups")}
    )
    backup_id, _ = await request_backup(fleet.store, fleet.vault, acme.id, destination)
    done = await fleet.wait_for(
        backup_stream(backup_id), BackupCompleted, BackupFailed, timeout=120
    )
    assert isinstance(done, BackupCompleted), done
    other_server = await validated_server(fleet)

    copy_id, operation_id = await restore_into_new(fleet.settings, pool, backup_id, other_server)
    restored = await outcome_of(fleet, backup_id, operation_id)

    assert isinstance(restored, InstanceRestored), (restored, await fleet.operation(operation_id))
    provisioned = await fleet.wait_for(instance_stream(copy_id), InstanceProvisioned)
    assert isinstance(provisioned, InstanceProvisioned)
    copy = (await load(fleet.store, instance_stream(copy_id), instance_fold)).state
    source = (await load(fleet.store, acme.stream, instance_fold)).state
    assert not isinstance(copy, Absent)
    assert not isinstance(source, Absent)
    assert (copy.facts.server_id, copy.facts.created.odoo_version) == (
        other_server, source.facts.created.odoo_version,
    )  # fmt: skip
    layout = InstanceLayout("copy")

    async def in_copy_db(sql: str) -> str:
        return await docker(
            fleet.sshd.engine, "exec", layout.db_container, "psql", "-U", "odoo", "-d", "copy",
            "-tAc", sql,
        )  # fmt: skip

    count = "SELECT count(*) FROM res_partner WHERE name = 'Original Partner'"
    assert await in_copy_db(count) == "1"
    neutralized = "SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'"
    assert await in_copy_db(neutralized) == "true"
    color = provisioned.active_color
    copied = FILE.replace("/acme/", "/copy/")
    assert await docker(
        fleet.sshd.engine, "exec", layout.app_container(color), "cat", copied
    ) == "original"  # fmt: skip

    # The copy's own credentials open it, the source's do not.
    await fleet.wait_ended(credentials_operation(operation_id), timeout=120)
    copy = (await load(fleet.store, instance_stream(copy_id), instance_fold)).state
    assert isinstance(copy, Existing)
    assert copy.facts.admin_user_password is not None
    password = await fleet.vault.open(instance_stream(copy_id), copy.facts.admin_user_password)
    app = layout.app_container(color)
    assert await logs_in(fleet, app, "copy", "admin", password)
    assert not await logs_in(fleet, app, "copy", "admin", acme.admin_user_password)
    assert await logs_in(fleet, app, "copy", "odoofleet-mcp", await mcp_key_of(fleet, copy))
    assert not await logs_in(fleet, app, "copy", "odoofleet-mcp", await mcp_key_of(fleet, source))
