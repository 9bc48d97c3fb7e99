"""The audit trail: one entry per auditable event, who/where/what changed, and its filters."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

from builders import meta
from projection_fixtures import (
    NOW,
    append_to_instance,
    catch_up,
    create_instance,
    new_id,
    provision,
    register_server,
    request_action,
)

from api.routes_audit import ResourceType
from events.instance import (
    ActionFailed,
    InstanceRemoved,
    InstanceUpdated,
    ProvisioningFailed,
    RemovalRequested,
    instance_stream,
)
from events.metadata import Actor, EventMetadata
from events.pool import Pool
from events.secrets import MASK, Vault
from events.server import ServerDeleted, ServerValidationFailed, server_stream
from events.store import ANY, EventStore
from projections.audit import (
    RESOURCE_TYPES,
    AuditEntry,
    AuditFilter,
    AuditProjection,
    query_audit,
)


async def _all(pool: Pool, org: str = "org-a", **filters: object) -> list[AuditEntry]:
    entries, total = await query_audit(pool, org, AuditFilter(**filters), 1, 1000)  # type: ignore[arg-type]
    assert total == len(entries)
    return entries


async def test_each_instance_change_is_audited_with_its_action(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    await provision(store, instance_id)
    for action in ("stop", "start", "restart"):
        await request_action(store, instance_id, action)
    op = new_id()
    await append_to_instance(
        store,
        instance_id,
        ActionFailed(
            instance_id=instance_id, operation_id=op, action="restart", step="up", message="x"
        ),
        InstanceUpdated(instance_id=instance_id, name="Renamed", updated_at=NOW),
        RemovalRequested(instance_id=instance_id, operation_id=op),
        InstanceRemoved(instance_id=instance_id, operation_id=op),
    )
    await catch_up(pool, "audit")

    entries = await _all(pool)

    assert [e.action for e in reversed(entries)] == [
        "instance.created",
        "instance.provisioned",
        "instance.stopped",
        "instance.started",
        "instance.restarted",
        "instance.failed",
        "instance.updated",
        "instance.deleted",
    ]
    assert {e.resource_id for e in entries} == {instance_id}
    assert entries[0].resource_name == "Renamed"


async def test_an_entry_says_who_from_where_and_in_which_request(pool: Pool, store: EventStore):
    request = EventMetadata(
        actor=Actor(id="u-42", name="Ada"),
        org_id="org-a",
        correlation_id="req-7",
        client_ip="203.0.113.9",
        user_agent="curl/8",
    )
    _, result = await create_instance(store, request)
    await catch_up(pool, "audit")

    (entry,) = await _all(pool)

    assert (entry.user_id, entry.user_name, entry.ip_address, entry.user_agent) == (
        "u-42",
        "Ada",
        "203.0.113.9",
        "curl/8",
    )
    assert (entry.correlation_id, entry.event_type, entry.resource_type) == (
        "req-7",
        "InstanceCreated",
        "instance",
    )
    assert entry.position == result.positions[0]
    assert entry.before_state is None
    assert entry.after_state is not None
    assert entry.after_state["status"] == "creating"


async def test_an_update_records_only_the_changed_fields_before_and_after(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store, name="Old")
    await append_to_instance(
        store, instance_id, InstanceUpdated(instance_id=instance_id, name="New", updated_at=NOW)
    )
    await catch_up(pool, "audit")

    (entry,) = await _all(pool, action="instance.updated")

    assert (entry.before_state, entry.after_state) == ({"name": "Old"}, {"name": "New"})


async def test_secrets_are_masked_in_before_and_after(pool: Pool, store: EventStore, vault: Vault):
    instance_id = new_id()
    stream = instance_stream(instance_id)
    await create_instance(
        store, instance_id=instance_id, env_vars=await vault.seal_all(stream, {"KEY": "one"})
    )
    changed = await vault.seal_all(stream, {"KEY": "two", "OTHER": "three"})
    await append_to_instance(
        store,
        instance_id,
        InstanceUpdated(instance_id=instance_id, env_vars=changed, updated_at=NOW),
    )
    await catch_up(pool, "audit")

    updated, created = await _all(pool)

    assert created.after_state is not None
    assert created.after_state["env_vars"] == {"KEY": MASK}
    assert updated.before_state == {"env_vars": {"KEY": MASK}}
    assert updated.after_state == {"env_vars": {"KEY": MASK, "OTHER": MASK}}


async def test_provisioning_failure_is_audited_as_failed_by_the_worker(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    failed = ProvisioningFailed(
        instance_id=instance_id, operation_id=new_id(), step="database", message="disk full"
    )
    await append_to_instance(store, instance_id, failed, metadata=meta(user="system:worker"))
    await catch_up(pool, "audit")

    (entry,) = await _all(pool, action="instance.failed")

    assert entry.user_id == "system:worker"
    assert entry.after_state is not None
    assert entry.after_state["status"] == "failed"


async def test_server_creation_validation_and_deletion_are_audited(pool: Pool, store: EventStore):
    server_id = await register_server(store, name="box")
    failed = ServerValidationFailed(
        server_id=server_id, operation_id=new_id(), status="error", message="no docker"
    )
    await store.append(
        server_stream(server_id), ANY, [failed, ServerDeleted(server_id=server_id)], meta()
    )
    await catch_up(pool, "audit")

    deleted, validated, created = await _all(pool, resource_type="server")

    assert (created.action, validated.action, deleted.action) == (
        "server.created",
        "server.validated",
        "server.deleted",
    )
    assert validated.after_state == {"status": "error", "status_message": "no docker"}
    assert deleted.after_state is None
    assert deleted.before_state is not None
    assert deleted.resource_name == "box"


async def test_filters_narrow_by_resource_action_user_and_dates(pool: Pool, store: EventStore):
    first, _ = await create_instance(store, meta(user="alice"))
    second, _ = await create_instance(store, meta(user="bob"), port=20010)
    await request_action(store, second, "stop")
    server_id = await register_server(store)
    await catch_up(pool, "audit")
    everything = await _all(pool)
    times = sorted(e.created_at for e in everything)

    by_resource = await _all(pool, resource_type="instance", resource_id=first)
    by_action = await _all(pool, action="instance.created")
    by_user = await _all(pool, user_id="bob")
    by_type = await _all(pool, resource_type="server")
    since = await _all(pool, start_date=times[2])
    until = await _all(pool, end_date=times[1])
    empty = await _all(pool, end_date=times[0] - timedelta(seconds=1))

    assert len(everything) == 4
    assert [e.resource_id for e in by_resource] == [first]
    assert {e.resource_id for e in by_action} == {first, second}
    assert [(e.action, e.resource_id) for e in by_user] == [("instance.created", second)]
    assert [e.resource_id for e in by_type] == [server_id]
    assert {e.position for e in since} == {
        e.position for e in everything if e.created_at >= times[2]
    }
    assert {e.position for e in until} == {
        e.position for e in everything if e.created_at <= times[1]
    }
    assert empty == []


async def test_pages_split_the_newest_first_list_and_count_the_total(pool: Pool, store: EventStore):
    for n in range(5):
        await create_instance(store, port=20000 + 10 * n)
    await catch_up(pool, "audit")
    everything = await _all(pool)

    page_one, total_one = await query_audit(pool, "org-a", AuditFilter(), 1, 2)
    page_three, total_three = await query_audit(pool, "org-a", AuditFilter(), 3, 2)
    beyond, total_beyond = await query_audit(pool, "org-a", AuditFilter(), 9, 2)

    assert total_one == total_three == total_beyond == 5
    assert page_one + (await query_audit(pool, "org-a", AuditFilter(), 2, 2))[0] + page_three == (
        everything
    )
    assert [e.position for e in everything] == sorted(
        (e.position for e in everything), reverse=True
    )
    assert beyond == []


async def test_another_organizations_entries_are_invisible(pool: Pool, store: EventStore):
    await create_instance(store, meta("org-b"))
    await catch_up(pool, "audit")

    assert await _all(pool) == []
    assert len(await _all(pool, org="org-b")) == 1


def test_every_audited_kind_of_stream_can_be_searched_by_its_resource_type() -> None:
    assert set(RESOURCE_TYPES.values()) == set(AuditProjection.stream_types)
    assert set(get_args(ResourceType)) == set(RESOURCE_TYPES)
