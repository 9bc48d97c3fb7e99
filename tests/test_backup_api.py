"""The backups API: destinations tested and sealed (an S3 server the tests start; its own
error as a 400), backups taken, listed, read, deleted and restored as recorded requests,
schedules checked; organizations isolated (404), view-only callers refused (403), API keys
limited to other instances get a 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api_fixtures import Caller, CallerFactory, new_server, running_instance
from backup_requests import complete_backup, request_backup
from backup_servers import ACCESS_KEY, SECRET_KEY, S3Server, s3_server_fixture  # noqa: F401
from waiting import eventually

from commands.backup_retention import expires_at
from events.backup import (
    BackupCompleted,
    BackupRequested,
    RestoreFailed,
    RestoreRequested,
    backup_stream,
)
from events.registry import DomainEvent
from events.secrets import Vault
from events.store import EventStore


async def s3_destination(alice: Caller, s3: S3Server, bucket: str | None = None) -> dict[str, Any]:
    body = {
        "name": "offsite",
        "kind": "s3",
        "bucket": bucket or s3.bucket("backups"),
        "region": "us-east-1",
        "endpointUrl": s3.url,
        "prefix": "fleet",
        "accessKeyId": ACCESS_KEY,
        "secretAccessKey": SECRET_KEY,
    }
    created = await alice.post("/api/backup-destinations", json=body)
    return {"status": created.status_code, "position": created.headers.get("X-Position"),
            **created.json()}  # fmt: skip


async def local_destination(alice: Caller) -> str:
    body = {"name": "on the server", "kind": "local", "path": "/var/backups/odoofleet"}
    created = await alice.post("/api/backup-destinations", json=body)
    assert created.status_code == 201, created.text
    destination_id: str = created.json()["id"]
    return destination_id


async def backup_of_a_running_instance(
    alice: Caller, store: EventStore
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A running instance and its manual backup to a local destination, as the API answered."""
    instance = await running_instance(alice, store, await new_server(alice))
    taken = await alice.post(
        f"/api/instances/{instance['id']}/backups",
        json={"destinationId": await local_destination(alice)},
    )
    assert taken.status_code == 202, taken.text
    backup: dict[str, Any] = taken.json()
    return instance, backup


async def test_an_s3_destination_is_tested_and_its_secret_never_shown(
    alice: Caller, s3_server: S3Server
) -> None:
    created = await s3_destination(alice, s3_server)

    assert created["status"] == 201, created
    assert created["settings"]["accessKeyId"] == ACCESS_KEY
    assert SECRET_KEY not in str(created)
    seen = {"X-Min-Position": created["position"]}
    listed = (await alice.get("/api/backup-destinations", headers=seen)).json()["destinations"]
    assert [d["id"] for d in listed] == [created["id"]]
    assert SECRET_KEY not in str(listed)


async def test_a_destination_that_fails_its_test_is_a_400_with_its_own_error(
    alice: Caller, s3_server: S3Server
) -> None:
    refused = await s3_destination(alice, s3_server, bucket="missing-bucket")

    assert refused["status"] == 400
    assert refused["type"].endswith("destination-unreachable")
    assert "NoSuchBucket" in refused["detail"]
    assert (await alice.get("/api/backup-destinations")).json()["destinations"] == []


async def test_a_backup_is_a_202_with_its_operation_and_is_listed(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    destination_id = await local_destination(alice)

    taken = await alice.post(
        f"/api/instances/{instance['id']}/backups", json={"destinationId": destination_id}
    )

    assert taken.status_code == 202, taken.text
    backup = taken.json()
    assert (backup["status"], backup["reason"]) == ("running", "manual")
    requested = (await store.read_stream(backup_stream(backup["id"])))[0]
    assert requested.event_type == BackupRequested.event_type()
    assert "v1:" in requested.data  # the data key is stored sealed
    listing = await alice.get(
        f"/api/instances/{instance['id']}/backups",
        headers={"X-Min-Position": taken.headers["X-Position"]},
    )
    assert [b["id"] for b in listing.json()["backups"]] == [backup["id"]]
    assert (await alice.get(f"/api/backups/{backup['id']}")).json()["operationId"] == backup[
        "operationId"
    ]
    audit = await alice.get(
        "/api/audit-logs", headers={"X-Min-Position": taken.headers["X-Position"]}
    )
    entries = [e for e in audit.json()["items"] if e["resourceId"] == backup["id"]]
    assert [(e["action"], e["resourceType"]) for e in entries] == [("backup.requested", "backup")]
    # Still running: neither restored nor deleted yet.
    assert (await alice.post(f"/api/backups/{backup['id']}/restore", json={})).status_code == 409
    assert (await alice.delete(f"/api/backups/{backup['id']}")).status_code == 409


async def test_a_backup_needs_a_destination_of_the_organization(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    theirs = await local_destination(mallory)
    url = f"/api/instances/{instance['id']}/backups"

    assert (await alice.post(url, json={})).status_code == 400
    assert (await alice.post(url, json={"destinationId": theirs})).status_code == 400


async def test_another_organization_finds_neither_the_instance_nor_its_backups(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    instance, backup = await backup_of_a_running_instance(alice, store)
    backup_id = backup["id"]

    assert (await mallory.get(f"/api/backups/{backup_id}")).status_code == 404
    assert (await mallory.delete(f"/api/backups/{backup_id}")).status_code == 404
    assert (await mallory.post(f"/api/backups/{backup_id}/restore", json={})).status_code == 404
    assert (await mallory.get(f"/api/instances/{instance['id']}/backups")).status_code == 404
    theirs = await local_destination(mallory)
    again = await mallory.post(
        f"/api/instances/{instance['id']}/backups", json={"destinationId": theirs}
    )
    assert again.status_code == 404


async def test_a_view_only_caller_can_list_but_not_take_or_restore(
    alice: Caller, viewer: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    destination_id = await local_destination(alice)
    taken = await alice.post(
        f"/api/instances/{instance['id']}/backups", json={"destinationId": destination_id}
    )
    backup_id = taken.json()["id"]
    seen = {"X-Min-Position": taken.headers["X-Position"]}

    listed = await viewer.get(f"/api/instances/{instance['id']}/backups", headers=seen)
    assert [b["id"] for b in listed.json()["backups"]] == [backup_id]
    assert (await viewer.get(f"/api/backups/{backup_id}", headers=seen)).status_code == 200
    refused = [
        await viewer.post(
            f"/api/instances/{instance['id']}/backups", json={"destinationId": destination_id}
        ),
        await viewer.post(f"/api/backups/{backup_id}/restore", json={}),
        await viewer.delete(f"/api/backups/{backup_id}"),
        await viewer.get("/api/backup-destinations"),
        await viewer.get(f"/api/backups/{backup_id}/download", params={"format": "odoo"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403, 403]
    # The manager may download it once completed; running, it is a conflict.
    running = await alice.get(f"/api/backups/{backup_id}/download", params={"format": "odoo"})
    assert running.status_code == 409
    wrong = await alice.get(f"/api/backups/{backup_id}/download", params={"format": "tar"})
    assert wrong.status_code == 400


async def test_a_restore_is_recorded_for_a_completed_backup_and_needs_manage_instances(
    alice: Caller, caller: CallerFactory, store: EventStore
) -> None:
    instance, backup = await backup_of_a_running_instance(alice, store)
    backup_id = backup["id"]
    await complete_backup(store, backup_id, backup["operationId"])
    shown: dict[str, Any] = {}

    async def backed_up() -> bool:
        shown.update((await alice.get(f"/api/instances/{instance['id']}")).json())
        return shown["lastBackupStatus"] == "completed"

    await eventually(backed_up, timeout=10, interval=0.05, message="lastBackupStatus completed")
    assert shown["lastBackupAt"] is not None
    backups_only = await caller(org="org-a", sub="bea", permissions=("manage:backups",))

    assert (
        await backups_only.post(f"/api/backups/{backup_id}/restore", json={})
    ).status_code == 403
    restored = await alice.post(f"/api/backups/{backup_id}/restore", json={"neutralize": True})

    assert restored.status_code == 202, restored.text
    assert restored.json()["targetInstanceId"] == instance["id"]
    last = (await store.read_stream(backup_stream(backup_id)))[-1]
    assert last.event_type == RestoreRequested.event_type()
    missing = await alice.post(
        f"/api/backups/{backup_id}/restore", json={"targetInstanceId": str(uuid.uuid4())}
    )
    assert missing.status_code in (400, 409)


async def completed_backup(alice: Caller, store: EventStore) -> tuple[dict[str, Any], str]:
    instance, backup = await backup_of_a_running_instance(alice, store)
    await complete_backup(store, backup["id"], backup["operationId"])
    return instance, backup["id"]


async def last_event(store: EventStore, backup_id: str) -> DomainEvent:
    return store.decode((await store.read_stream(backup_stream(backup_id)))[-1])


async def test_a_restore_into_a_new_instance_creates_it_with_the_backups_odoo(
    alice: Caller, store: EventStore
) -> None:
    instance, backup_id = await completed_backup(alice, store)
    other_server = await new_server(alice)
    body = {"name": "Copy", "serverId": other_server, "slug": "copy", "branch": "staging"}

    accepted = await alice.post(
        f"/api/backups/{backup_id}/restore", json={"newInstance": body, "neutralize": True}
    )

    assert accepted.status_code == 202, accepted.text
    new_id = accepted.json()["targetInstanceId"]
    assert new_id != instance["id"]
    assert accepted.headers["Location"] == f"/api/instances/{new_id}"
    created = await alice.get(
        f"/api/instances/{new_id}", headers={"X-Min-Position": accepted.headers["X-Position"]}
    )
    shown = created.json()
    assert (shown["status"], shown["serverId"], shown["slug"]) == (
        "creating", other_server, "copy",
    )  # fmt: skip
    assert (shown["odooVersion"], shown["odooEdition"]) == (
        instance["odooVersion"], instance["odooEdition"],
    )  # fmt: skip
    requested = await last_event(store, backup_id)
    assert isinstance(requested, RestoreRequested)
    assert (requested.target_instance_id, requested.new_instance, requested.neutralize) == (
        new_id, True, True,
    )  # fmt: skip
    assert requested.operation_id == accepted.json()["operationId"]
    busy = await alice.post(f"/api/backups/{backup_id}/restore", json={"newInstance": body})
    assert busy.status_code == 409  # one restore from a backup at a time


async def test_a_restore_into_a_new_instance_refuses_what_a_create_refuses(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    instance, backup_id = await completed_backup(alice, store)
    url = f"/api/backups/{backup_id}/restore"
    server_id = instance["serverId"]
    new = {"name": "Copy", "serverId": server_id}

    both = await alice.post(url, json={"targetInstanceId": instance["id"], "newInstance": new})
    version = await alice.post(url, json={"newInstance": new | {"odooVersion": "16.0"}})
    theirs = await alice.post(
        url, json={"newInstance": new | {"serverId": await new_server(mallory)}}
    )
    unknown = await alice.post(url, json={"newInstance": new | {"serverId": str(uuid.uuid4())}})

    assert (both.status_code, both.json()["errors"][0]["field"]) == (400, "newInstance")
    assert (version.status_code, version.json()["errors"][0]["field"]) == (400, "odooVersion")
    assert (theirs.status_code, theirs.json()) == (unknown.status_code, unknown.json())
    assert (theirs.status_code, theirs.json()["errors"][0]["field"]) == (
        400, "newInstance.serverId",
    )  # fmt: skip
    assert isinstance(await last_event(store, backup_id), BackupCompleted)  # nothing recorded
    taken = await alice.post(url, json={"newInstance": new | {"slug": instance["slug"]}})
    as_a_create = await alice.post("/api/instances", json=new | {"slug": instance["slug"]})

    assert (taken.status_code, taken.json()) == (as_a_create.status_code, as_a_create.json())
    assert taken.json()["type"].endswith("slug-taken")
    failed = await last_event(store, backup_id)
    assert isinstance(failed, RestoreFailed)
    assert (failed.step, failed.target_instance_id) == ("create", failed.target_instance_id)
    assert failed.message.startswith("the new instance was not created")
    again = await alice.post(url, json={"newInstance": new | {"slug": "copy"}})
    assert again.status_code == 202, again.text  # the refused create left the backup free


async def test_a_schedule_is_checked_and_answers_its_next_run(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    destination_id = await local_destination(alice)
    url = f"/api/instances/{instance['id']}/backup-schedule"
    body = {"cron": "0 3 * * *", "timezone": "Europe/Brussels", "destinationId": destination_id}

    done = await alice.put(url, json=body)

    assert done.status_code == 200, done.text
    assert done.json()["nextRunAt"].endswith(("T02:00:00Z", "T01:00:00Z"))
    assert (await alice.put(url, json={**body, "cron": "every night"})).status_code == 400
    assert (await alice.put(url, json={**body, "timezone": "Mars/Olympus"})).status_code == 400
    # Without destinationId, a backup goes to the schedule's destination.
    taken = await alice.post(f"/api/instances/{instance['id']}/backups", json={})
    assert taken.json()["destinationId"] == destination_id


async def test_the_audit_trail_filters_backups_destinations_and_schedules(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    destination_id = await local_destination(alice)
    taken = await alice.post(
        f"/api/instances/{instance['id']}/backups", json={"destinationId": destination_id}
    )
    seen = {"X-Min-Position": taken.headers["X-Position"]}

    async def audited(resource_type: str) -> list[tuple[str, str]]:
        found = await alice.get(
            "/api/audit-logs", params={"resource_type": resource_type}, headers=seen
        )
        assert found.status_code == 200, found.text
        return [(e["action"], e["resourceId"]) for e in found.json()["items"]]

    assert await audited("backup") == [("backup.requested", taken.json()["id"])]
    assert await audited("backup_destination") == [("backup_destination.created", destination_id)]
    schedule = {"cron": "0 3 * * *", "destinationId": destination_id}
    set_ = await alice.put(f"/api/instances/{instance['id']}/backup-schedule", json=schedule)
    seen = {"X-Min-Position": set_.headers["X-Position"]}
    assert await audited("backup_schedule") == [("backup_schedule.set", instance["id"])]


async def test_a_scheduled_backup_shows_when_retention_lets_it_go_a_manual_one_never(
    alice: Caller, store: EventStore, vault: Vault
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    destination_id = await local_destination(alice)
    schedule = {"cron": "0 3 * * *", "timezone": "UTC", "destinationId": destination_id,
                "keepDaily": 7, "keepWeekly": 0, "keepMonthly": 0}  # fmt: skip
    set_ = await alice.put(f"/api/instances/{instance['id']}/backup-schedule", json=schedule)
    assert set_.status_code == 200, set_.text
    due = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    scheduled, operation_id = await request_backup(
        store, vault, instance["id"], destination_id, due_at=due
    )
    await complete_backup(store, scheduled, operation_id, now=due + timedelta(minutes=2))
    manual = await alice.post(
        f"/api/instances/{instance['id']}/backups", json={"destinationId": destination_id}
    )
    seen = {"X-Min-Position": manual.headers["X-Position"]}

    async def expiry(backup_id: str) -> str | None:
        shown = await alice.get(f"/api/backups/{backup_id}", headers=seen)
        assert shown.status_code == 200, shown.text
        found: str | None = shown.json()["expiresAt"]
        return found

    # Seven newer days of a daily schedule: the backup of Dec 12 lets it go.
    assert await expiry(scheduled) == "2026-12-12T03:00:00Z"
    assert expires_at(due, "0 3 * * *", "UTC", keep_daily=7, keep_weekly=0, keep_monthly=0) == (
        datetime(2026, 12, 12, 3, 0, tzinfo=UTC)
    )
    assert await expiry(manual.json()["id"]) is None  # kept until deleted
