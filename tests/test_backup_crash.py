"""A worker process killed with SIGKILL in the middle of a backup (real Docker: a real
pg_dump and a filestore large enough to take a moment) is replaced by another, which carries
on with the part it was writing: the database is dumped once, and the destination ends with
the three parts under their keys and no partial object."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from backup_requests import create_destination, request_backup
from realdocker_fixtures import (  # noqa: F401
    DockerFleet,
    DockerSshd,
    docker_engine_fixture,
    docker_server_fixture,
)
from saga_fixtures import steps_of
from test_backup_realdocker import filestore
from test_realdocker_sagas import provision, validated_server
from test_saga_crash import Workers

from events.backup import BackupCompleted, BackupFailed, backup_stream
from events.operation import OperationStepCompleted, OperationStepStarted
from events.pool import Pool
from events.registry import EventRegistry
from odoofleet.settings import Settings
from workers.runtime.run import SAGAS
from workers.ssh.network_policy import LOOPBACK_NETWORKS

pytestmark = pytest.mark.realdocker

BACKUP_SAGAS = ("BackupRequested", "RestoreRequested", "BackupDeletionRequested")


@pytest_asyncio.fixture(name="loopback")
async def loopback_fixture(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, server_allowed_networks=LOOPBACK_NETWORKS)


@pytest_asyncio.fixture(name="fleet_without_backups")
async def fleet_without_backups_fixture(
    loopback: Settings, pool: Pool, registry: EventRegistry, docker_server: DockerSshd
) -> AsyncIterator[DockerFleet]:
    """The fleet's relay and workers for everything but backups, which worker processes of
    the test run (and the test kills)."""
    fleet = DockerFleet(loopback, pool, registry, docker_server)
    fleet.start_relay()
    fleet.start_workers(sagas=[s.trigger for s in SAGAS if s.trigger not in BACKUP_SAGAS])
    try:
        yield fleet
    finally:
        await fleet.stop()


async def test_a_worker_killed_mid_backup_is_resumed_without_a_second_dump(
    fleet_without_backups: DockerFleet, loopback: Settings, tmp_path: Path
) -> None:
    fleet = fleet_without_backups
    server_id = await validated_server(fleet)
    acme, _ = await provision(fleet, server_id, "acme")
    big = "/var/lib/odoo/filestore/acme/ff/big"
    await filestore(
        fleet, acme, f"mkdir -p $(dirname {big}) && head -c 200000000 /dev/urandom > {big}"
    )
    store = tmp_path / "backups"
    destination = await create_destination(fleet.store, fleet.vault, "local", {"path": str(store)})
    workers = Workers(loopback, fleet.root, tmp_path)
    try:
        first = workers.start("worker-1")
        backup_id, operation_id = await request_backup(
            fleet.store, fleet.vault, acme.id, destination
        )
        await fleet.wait_step_started(operation_id, "filestore", timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        partial = store / acme.id / backup_id / "filestore.tar.ofb.partial"
        workers.start("worker-2")

        done = await fleet.wait_for(
            backup_stream(backup_id), BackupCompleted, BackupFailed, timeout=120
        )
    finally:
        workers.stop_all()

    assert isinstance(done, BackupCompleted), done
    operation = await fleet.operation(operation_id)
    assert steps_of(operation, OperationStepStarted) == [
        "database",
        "filestore",
        "filestore",
        "manifest",
    ]
    assert steps_of(operation, OperationStepCompleted) == ["database", "filestore", "manifest"]
    stored = sorted(path.name for path in (store / acme.id / backup_id).iterdir())
    assert stored == ["database.dump.ofb", "filestore.tar.ofb", "manifest.json.ofb"]
    assert not partial.exists()
    filestore_part = next(part for part in done.parts if part.name == "filestore")
    assert filestore_part.size > 200_000_000
