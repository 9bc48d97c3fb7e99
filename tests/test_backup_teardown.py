"""The final backup of a teardown, on the sandbox: taken to the schedule's destination before
anything is removed; skipped with finalBackup=false; a failed one stops the teardown before
the data goes (the instance ends failed with the reason, its volumes still there)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from backup_requests import create_destination
from builders import meta
from saga_fixtures import Fleet, Instance
from sshd_harness import free_port

from commands import backup_schedule
from commands.runner import execute_command
from events.backup import schedule_stream
from events.instance import (
    InstanceProvisioned,
    InstanceRemoved,
    RemovalAbandoned,
    RemovalRequested,
)
from events.operation import OperationStepCompleted
from events.server import ServerValidated, server_stream


async def scheduled(fleet: Fleet, destination: str) -> Instance:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    acme = await fleet.create_instance(server_id)
    await fleet.wait_for(acme.stream, InstanceProvisioned, timeout=60)
    command = backup_schedule.SetSchedule(
        instance_id=acme.id, cron="0 3 * * *", timezone="UTC", destination_id=destination,
        keep_daily=7, keep_weekly=0, keep_monthly=0,
    )  # fmt: skip
    await execute_command(
        fleet.store, schedule_stream(acme.id), backup_schedule.fold, backup_schedule.decide,
        command, datetime.now(UTC), meta(),
    )  # fmt: skip
    return acme


def outputs(events: list[object]) -> dict[str, str]:
    return {e.step: e.output for e in events if isinstance(e, OperationStepCompleted)}


async def test_a_teardown_takes_a_final_backup_first(fleet: Fleet, tmp_path: Path) -> None:
    store = tmp_path / "backups"
    destination = await create_destination(fleet.store, fleet.vault, "local", {"path": str(store)})
    acme = await scheduled(fleet, destination)

    operation_id = await fleet.remove(acme)
    done = await fleet.wait_for(acme.stream, InstanceRemoved, RemovalAbandoned, timeout=60)

    assert isinstance(done, InstanceRemoved), done
    assert outputs(await fleet.operation(operation_id))["final-backup"].startswith("final backup")
    (kept,) = (store / acme.id).iterdir()
    assert sorted(p.name for p in kept.iterdir()) == [
        "database.dump.ofb", "filestore.tar.ofb", "manifest.json.ofb",
    ]  # fmt: skip


async def test_final_backup_false_skips_it(fleet: Fleet, tmp_path: Path) -> None:
    store = tmp_path / "backups"
    destination = await create_destination(fleet.store, fleet.vault, "local", {"path": str(store)})
    acme = await scheduled(fleet, destination)

    operation_id = await fleet.request(acme, RemovalRequested, final_backup=False)
    done = await fleet.wait_for(acme.stream, InstanceRemoved, RemovalAbandoned, timeout=60)

    assert isinstance(done, InstanceRemoved), done
    assert "finalBackup=false" in outputs(await fleet.operation(operation_id))["final-backup"]
    assert not store.exists()


async def test_a_failed_final_backup_stops_the_teardown_before_the_data_goes(
    fleet: Fleet,
) -> None:
    down = await create_destination(
        fleet.store, fleet.vault, "sftp",
        {"host": "127.0.0.1", "port": str(free_port()), "user": "root", "path": "/b",
         "hostKey": fleet.sshd.host_key_line},
        {"privateKey": fleet.sshd.client_private_key},
    )  # fmt: skip
    acme = await scheduled(fleet, down)

    await fleet.remove(acme)
    done = await fleet.wait_for(acme.stream, InstanceRemoved, RemovalAbandoned, timeout=60)

    assert isinstance(done, RemovalAbandoned), done
    assert done.step == "final-backup"
    assert "nothing was removed" in done.message
    volumes = fleet.sshd.state_dir / "volumes"
    assert (volumes / "acme_pgdata.json").exists()
