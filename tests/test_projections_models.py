"""The servers, operations and health read models."""

from __future__ import annotations

from datetime import timedelta

from builders import meta
from projection_fixtures import (
    NOW,
    catch_up,
    create_instance,
    health_observed,
    new_id,
    register_server,
)

from events.health import health_stream
from events.metadata import EventMetadata, system_actor
from events.operation import (
    OperationFailed,
    OperationStarted,
    OperationStepCompleted,
    OperationStepFailed,
    OperationStepStarted,
    OperationSucceeded,
    operation_stream,
)
from events.pool import Pool
from events.server import (
    HostKeyPinned,
    ServerDeleted,
    ServerReachable,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
    server_stream,
)
from events.store import ANY, EventStore
from projections.health import get_health
from projections.operations import EXCERPT_CHARS, excerpt, list_operations
from projections.servers import get_server, list_servers


def _validated(server_id: str) -> ServerValidated:
    return ServerValidated(
        server_id=server_id,
        operation_id=new_id(),
        os_name="Debian",
        os_version="12",
        cpu_cores=8,
        ram_total_bytes=32 * 2**30,
        disk_free_bytes=2**40,
        docker_version="27.1",
        compose_version="2.29",
        validated_at=NOW,
    )


async def test_a_validated_server_is_active_with_what_validation_found(
    pool: Pool, store: EventStore
):
    server_id = await register_server(store)
    pinned = HostKeyPinned(
        server_id=server_id,
        host_key="ssh-ed25519 AAAA",
        fingerprint="SHA256:abc",
        trust="first-use",
    )
    await store.append(server_stream(server_id), ANY, [pinned, _validated(server_id)], meta())
    await catch_up(pool, "servers")

    server = await get_server(pool, "org-a", server_id)

    assert server is not None
    assert (server.status, server.os_name, server.cpu_cores, server.docker_version) == (
        "active",
        "Debian",
        8,
        "27.1",
    )
    assert (server.host_key_fingerprint, server.last_seen_at, server.version) == (
        "SHA256:abc",
        NOW,
        3,
    )


async def test_a_failed_validation_shows_its_status_and_message(pool: Pool, store: EventStore):
    server_id = await register_server(store)
    failed = ServerValidationFailed(
        server_id=server_id, operation_id=new_id(), status="unreachable", message="no route"
    )
    await store.append(server_stream(server_id), ANY, [failed], meta())
    await catch_up(pool, "servers")

    server = await get_server(pool, "org-a", server_id)

    assert server is not None
    assert (server.status, server.status_message) == ("unreachable", "no route")


async def test_an_outage_ends_when_the_server_is_reachable_again(pool: Pool, store: EventStore):
    server_id = await register_server(store)
    back = NOW + timedelta(minutes=5)
    await store.append(
        server_stream(server_id),
        ANY,
        [
            _validated(server_id),
            ServerUnreachable(server_id=server_id, message="timeout", observed_at=NOW),
            ServerReachable(server_id=server_id, observed_at=back),
        ],
        meta(),
    )
    await catch_up(pool, "servers")

    server = await get_server(pool, "org-a", server_id)

    assert server is not None
    assert (server.status, server.status_message, server.last_seen_at) == ("active", None, back)


async def test_servers_are_listed_per_organization_and_deleted_ones_vanish(
    pool: Pool, store: EventStore
):
    kept = await register_server(store, name="kept")
    deleted = await register_server(store, name="deleted")
    other = await register_server(store, org="org-b")
    await store.append(server_stream(deleted), ANY, [ServerDeleted(server_id=deleted)], meta())
    await catch_up(pool, "servers")

    assert [s.id for s in await list_servers(pool, "org-a")] == [kept]
    assert await get_server(pool, "org-a", deleted) is None
    assert await get_server(pool, "org-a", other) is None


async def _operation(store: EventStore, instance_id: str) -> str:
    op = new_id()
    started = OperationStarted(
        operation_id=op, type="provision", instance_id=instance_id, server_id="srv-1", worker="w1"
    )
    await store.append(operation_stream(op), ANY, [started], meta())
    return op


async def test_an_operation_lists_its_steps_with_status_timing_and_output(
    pool: Pool, store: EventStore
):
    instance_id, _ = await create_instance(store)
    op = await _operation(store, instance_id)
    await store.append(
        operation_stream(op),
        ANY,
        [
            OperationStepStarted(operation_id=op, step="preflight"),
            OperationStepCompleted(operation_id=op, step="preflight", duration_ms=40, output="ok"),
            OperationStepStarted(operation_id=op, step="database"),
            OperationStepFailed(
                operation_id=op, step="database", duration_ms=900, error="exit 1", output="boom"
            ),
            OperationStepStarted(operation_id=op, step="database", attempt=2),
            OperationStepCompleted(operation_id=op, step="database", duration_ms=80, output=""),
            OperationSucceeded(operation_id=op),
        ],
        meta(),
    )
    await catch_up(pool, "operations")

    (operation,) = await list_operations(pool, "org-a", instance_id)

    assert (operation.id, operation.type, operation.status) == (op, "provision", "succeeded")
    assert operation.completed_at is not None
    assert operation.completed_at >= operation.started_at
    assert [(s.name, s.status, s.duration_ms) for s in operation.steps] == [
        ("preflight", "succeeded", 40),
        ("database", "succeeded", 80),
    ]
    assert operation.steps[0].output == "ok"


async def test_a_failed_operation_records_the_step_and_error(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    op = await _operation(store, instance_id)
    failed = OperationFailed(operation_id=op, step="proxy", error="reload failed")
    await store.append(operation_stream(op), ANY, [failed], meta())
    await catch_up(pool, "operations")

    (operation,) = await list_operations(pool, "org-a", instance_id)

    assert operation.id == op
    assert (operation.status, operation.error) == ("failed", "proxy: reload failed")


async def test_operations_are_listed_newest_first_per_instance(pool: Pool, store: EventStore):
    instance_id, _ = await create_instance(store)
    first = await _operation(store, instance_id)
    second = await _operation(store, instance_id)
    await _operation(store, new_id())
    await catch_up(pool, "operations")

    listed = await list_operations(pool, "org-a", instance_id)

    assert [o.id for o in listed] == [second, first]
    assert await list_operations(pool, "org-b", instance_id) == []


def test_an_output_excerpt_is_bounded_and_masks_secrets():
    text = "start\nDB_PASSWORD=s3cret token: abc123\n" + "x" * 5000 + "\nadmin_passwd = hunter2"
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"

    short = excerpt("DB_PASSWORD=s3cret token: abc123 " + key)
    long = excerpt(text)

    assert "s3cret" not in short
    assert "abc123" not in short
    assert "AAAA" not in short
    assert short.startswith("DB_PASSWORD=********")
    assert len(long) <= EXCERPT_CHARS
    assert long.endswith("admin_passwd = ********")


async def test_health_keeps_the_latest_observation_and_when_it_was_last_seen(
    pool: Pool, store: EventStore
):
    instance_id = new_id()
    later = NOW + timedelta(minutes=3)
    system = EventMetadata(actor=system_actor("observer"), org_id="org-a", correlation_id="c")
    await store.append(
        health_stream(instance_id),
        ANY,
        [
            health_observed(instance_id, "healthy", NOW),
            health_observed(instance_id, "unhealthy", later),
        ],
        system,
    )
    await catch_up(pool, "health")

    health = await get_health(pool, "org-a", instance_id)

    assert health is not None
    assert (health.status, health.last_checked_at, health.last_seen_at) == ("unhealthy", later, NOW)
    assert health.response_time_ms == 12.5
    assert await get_health(pool, "org-b", instance_id) is None
