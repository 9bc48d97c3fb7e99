"""The Odoo admin user's credentials through HTTP: reveal (audited) and rotate."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, cast

import msgspec
import pytest
from api_fixtures import Caller, new_instance, new_server, record, running_instance, stream_types
from psycopg import sql
from waiting import eventually

from events.instance import (
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    InstanceCreated,
    InstanceProvisioned,
    instance_stream,
)
from events.pool import Pool
from events.registry import DomainEvent
from events.secrets import Sealed, Vault
from events.store import EventStore


def credentials(instance: dict[str, Any]) -> str:
    return f"/api/instances/{instance['id']}/admin-credentials"


async def sealed_field(store: EventStore, instance_id: str, event_type: str) -> Sealed:
    for event in await store.read_stream(instance_stream(instance_id)):
        if event.event_type == event_type:
            return Sealed(json.loads(event.data)["admin_user_password"]["sealed"])
    raise AssertionError(f"no {event_type}")


async def test_a_manager_is_shown_the_admin_login_and_the_password_set_at_creation(
    alice: Caller, store: EventStore, vault: Vault
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    response = await alice.get(credentials(instance))

    assert response.status_code == 200, response.text
    body = response.json()
    stored = await sealed_field(store, instance["id"], "InstanceCreated")
    assert body == {
        "login": "admin",
        "password": await vault.open(instance_stream(instance["id"]), stored),
    }
    assert len(body["password"]) >= 32
    assert response.headers["cache-control"] == "no-store"


async def test_every_reveal_is_in_the_audit_trail_without_the_password(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    password = (await alice.get(credentials(instance))).json()["password"]

    audit = await alice.get("/api/audit-logs", params={"action": "instance.credentials_revealed"})

    (item,) = audit.json()["items"]
    assert (item["resourceId"], item["userId"], item["eventType"]) == (
        instance["id"],
        "alice",
        "AdminCredentialsRevealed",
    )
    assert password not in audit.text
    assert "AdminCredentialsRevealed" in await stream_types(store, instance_stream(instance["id"]))
    assert password not in "".join(
        e.data for e in await store.read_stream(instance_stream(instance["id"]))
    )


async def test_a_view_only_caller_is_forbidden(
    alice: Caller, viewer: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    shown = await viewer.get(credentials(instance))
    rotated = await viewer.post(f"{credentials(instance)}/rotate")

    assert (shown.status_code, rotated.status_code) == (403, 403)
    assert "AdminCredentialsRevealed" not in await stream_types(
        store, instance_stream(instance["id"])
    )


async def test_another_organization_does_not_find_the_instance(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    shown = await mallory.get(credentials(instance))
    rotated = await mallory.post(f"{credentials(instance)}/rotate")

    assert (shown.status_code, rotated.status_code) == (404, 404)
    assert shown.headers["content-type"] == "application/problem+json"


async def test_shredded_secrets_are_a_clear_conflict(
    alice: Caller, store: EventStore, vault: Vault
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    await vault.forget(instance_stream(instance["id"]))

    async def refused() -> bool:
        # The app's vault may still hold the unwrapped key for a few seconds (secrets.py).
        return (await alice.get(credentials(instance))).status_code == 409

    await eventually(refused, message="the reveal refused once the key is shredded")
    revealed = await stream_types(store, instance_stream(instance["id"]))
    response = await alice.get(credentials(instance))

    assert response.status_code == 409
    assert response.json()["type"].endswith("secrets-forgotten")
    assert await stream_types(store, instance_stream(instance["id"])) == revealed


async def test_rotating_starts_an_operation_with_a_new_sealed_password(
    alice: Caller, store: EventStore, vault: Vault
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    before = (await alice.get(credentials(instance))).json()["password"]

    response = await alice.post(f"{credentials(instance)}/rotate")

    assert response.status_code == 202, response.text
    operation = response.json()
    assert (operation["type"], operation["status"], operation["instanceId"]) == (
        "rotate-admin-password",
        "pending",
        instance["id"],
    )
    requested = await sealed_field(store, instance["id"], "AdminPasswordRotationRequested")
    new = await vault.open(instance_stream(instance["id"]), requested)
    assert new != before
    assert len(new) >= 32
    assert before not in response.text
    assert new not in response.text
    # Until the saga has set it, the old password is the one that works.
    assert (await alice.get(credentials(instance))).json()["password"] == before


async def test_after_a_completed_rotation_the_new_password_is_revealed(
    alice: Caller, store: EventStore, vault: Vault
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    operation = (await alice.post(f"{credentials(instance)}/rotate")).json()
    requested = await sealed_field(store, instance["id"], "AdminPasswordRotationRequested")
    await record(
        store,
        instance_stream(instance["id"]),
        AdminPasswordRotated(instance_id=instance["id"], operation_id=operation["id"]),
    )

    shown = (await alice.get(credentials(instance))).json()["password"]

    assert shown == await vault.open(instance_stream(instance["id"]), requested)


async def test_a_failed_rotation_keeps_the_old_password(alice: Caller, store: EventStore) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    before = (await alice.get(credentials(instance))).json()["password"]
    operation = (await alice.post(f"{credentials(instance)}/rotate")).json()
    failure = AdminPasswordRotationFailed(
        instance_id=instance["id"], operation_id=operation["id"], step="set", message="x"
    )
    position = await record(store, instance_stream(instance["id"]), failure)

    shown = (await alice.get(credentials(instance))).json()["password"]
    read = await alice.get(f"/api/instances/{instance['id']}", headers={"X-Min-Position": position})

    assert shown == before
    assert read.json()["status"] == "running"


async def test_an_instance_that_is_not_running_cannot_rotate(alice: Caller) -> None:
    instance = await new_instance(alice, await new_server(alice))

    response = await alice.post(f"{credentials(instance)}/rotate")

    assert response.status_code == 409
    assert "creating" in response.json()["detail"]


def _version_1(event_type: type[DomainEvent], *dropped: str) -> type[DomainEvent]:
    """`event_type` as schema version 1 wrote it: the same name, without `dropped` fields."""
    kept = [
        (f.name, f.type) if f.required else (f.name, f.type, f.default)
        for f in msgspec.structs.fields(event_type)
        if f.name not in dropped
    ]
    old = msgspec.defstruct(
        event_type.__name__, kept, bases=(DomainEvent,), frozen=True, kw_only=True
    )
    return cast(type[DomainEvent], old)


async def test_an_instance_created_before_admin_passwords_reads_and_can_rotate(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    template = (
        await store.read_stream(instance_stream((await new_instance(alice, server_id))["id"]))
    )[0]
    fields = json.loads(template.data)
    instance_id = str(uuid.uuid4())
    fields |= {"instance_id": instance_id, "slug": "legacy", "auto_subdomain": "legacy.example"}
    del fields["admin_user_password"]
    old = msgspec.convert(fields, _version_1(InstanceCreated, "admin_user_password"))
    assert old.schema_version == 1
    position = await record(
        store,
        instance_stream(instance_id),
        old,
        InstanceProvisioned(instance_id=instance_id, operation_id="op", active_color="blue"),
    )

    read = await alice.get(f"/api/instances/{instance_id}", headers={"X-Min-Position": position})
    revealed = await alice.get(f"/api/instances/{instance_id}/admin-credentials")
    rotated = await alice.post(f"/api/instances/{instance_id}/admin-credentials/rotate")

    assert read.json()["status"] == "running"
    assert revealed.status_code == 409
    assert revealed.json()["type"].endswith("admin-password-unknown")
    assert rotated.status_code == 202


async def _every_value(pool: Pool) -> str:
    """Every column of every row of every table as text (bytea decoded, JSON as text)."""
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        texts = []
        for (table,) in await cursor.fetchall():
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
            for row in await (await conn.execute(query)).fetchall():
                texts += [
                    bytes(value).decode("utf-8", "replace")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                    for value in row
                ]
    return "\n".join(texts)


async def test_no_admin_password_is_stored_or_logged_in_plaintext(
    alice: Caller, store: EventStore, pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    instance = await running_instance(alice, store, await new_server(alice))
    first = (await alice.get(credentials(instance))).json()["password"]
    operation = (await alice.post(f"{credentials(instance)}/rotate")).json()
    position = await record(
        store,
        instance_stream(instance["id"]),
        AdminPasswordRotated(instance_id=instance["id"], operation_id=operation["id"]),
    )
    second = (await alice.get(credentials(instance))).json()["password"]
    await alice.get("/api/audit-logs", headers={"X-Min-Position": position})

    stored = await _every_value(pool)

    assert first != second
    assert first not in stored
    assert second not in stored
    assert first not in caplog.text
    assert second not in caplog.text
