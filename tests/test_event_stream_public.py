"""The public shape of the log (projections/public_events.py): which events integrations see,
under which name, with camelCase data and secrets masked as the audit trail masks them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from builders import meta

from events.health import HealthObserved, HealthStatus, HealthWindow, health_stream
from events.instance import InstanceUpdated, ProvisioningRequested, instance_stream
from events.publishing import decode_wire, payload_for
from events.registry import DomainEvent
from events.secrets import Sealed
from events.server import ServerValidationFailed, server_stream
from events.store import ANY, EventStore, RecordedEvent
from projections.public_events import (
    EVENT_NAMES,
    PUBLIC_NAMES,
    PublicEvent,
    PublicEvents,
    logged_from_wire,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def public(store: EventStore) -> PublicEvents:
    return PublicEvents(store)


async def appended(store: EventStore, stream_id: str, event: DomainEvent) -> RecordedEvent:
    result = await store.append(stream_id, ANY, [event], meta(org="org-a"))
    [recorded] = await store.read_stream(stream_id, result.version - 1, 1)
    return recorded


def observed(instance_id: str, status: HealthStatus, at: datetime) -> HealthObserved:
    return HealthObserved(
        instance_id=instance_id,
        server_id="s-1",
        status=status,
        container_state="running",
        http_status=200 if status == "healthy" else 502,
        response_time_ms=40.0,
        restart_count=0,
        oom_killed=False,
        memory_bytes=100,
        memory_limit_bytes=1000,
        cpu_percent=1.0,
        message=status,
        observed_at=at,
        window=HealthWindow(
            started_at=at - timedelta(seconds=30),
            probes=10,
            failures=0 if status == "healthy" else 10,
            latency_p50_ms=40.0,
            latency_p95_ms=60.0,
            latency_max_ms=80.0,
            restarts=0,
            oom_kills=0,
            peak_memory_bytes=100,
        ),
    )


async def test_an_update_shows_only_what_changed_in_camel_case_with_secrets_masked(
    store: EventStore, public: PublicEvents
) -> None:
    instance_id = str(uuid.uuid4())
    update = InstanceUpdated(
        instance_id=instance_id, env_vars={"MY_API_KEY": Sealed("v1:abc")}, updated_at=T0
    )

    recorded = await appended(store, instance_stream(instance_id), update)
    event = await public.of(recorded)

    assert event == PublicEvent(
        id=str(recorded.event_id),
        position=recorded.position,
        type="instance.updated",
        resource_type="instance",
        resource_id=instance_id,
        org_id="org-a",
        occurred_at=recorded.recorded_at,
        data={
            "instanceId": instance_id,
            "envVars": {"MY_API_KEY": "********"},
            "updatedAt": "2026-03-01T12:00:00Z",
        },
    )
    encoded = msgspec.json.decode(msgspec.json.encode(event))
    assert set(encoded) == {
        "id",
        "position",
        "type",
        "resourceType",
        "resourceId",
        "orgId",
        "occurredAt",
        "data",
    }


async def test_internal_events_are_not_public(store: EventStore, public: PublicEvents) -> None:
    instance_id = str(uuid.uuid4())
    requested = ProvisioningRequested(instance_id=instance_id, server_id="s", operation_id="op")

    assert await public.of(await appended(store, instance_stream(instance_id), requested)) is None
    assert "ProvisioningRequested" not in PUBLIC_NAMES


async def test_a_failed_validation_is_public_only_when_the_server_was_unreachable(
    store: EventStore, public: PublicEvents
) -> None:
    server_id = str(uuid.uuid4())
    unreachable = ServerValidationFailed(
        server_id=server_id, operation_id="op", status="unreachable", message="timeout"
    )
    error = ServerValidationFailed(
        server_id=server_id, operation_id="op2", status="error", message="no docker"
    )

    shown = await public.of(await appended(store, server_stream(server_id), unreachable))
    hidden = await public.of(await appended(store, server_stream(server_id), error))

    assert shown is not None
    assert (shown.type, shown.resource_type, shown.resource_id) == (
        "server.unreachable",
        "server",
        server_id,
    )
    assert hidden is None


async def test_a_health_observation_is_public_when_its_status_changed_with_the_score(
    store: EventStore, public: PublicEvents
) -> None:
    instance_id = str(uuid.uuid4())
    stream = health_stream(instance_id)

    first = await public.of(await appended(store, stream, observed(instance_id, "healthy", T0)))
    same = await public.of(
        await appended(store, stream, observed(instance_id, "healthy", T0 + timedelta(minutes=5)))
    )
    worse = await public.of(
        await appended(
            store, stream, observed(instance_id, "unhealthy", T0 + timedelta(minutes=10))
        )
    )

    assert first is not None
    assert worse is not None
    assert same is None
    assert (first.type, first.resource_type, first.resource_id) == (
        "instance.health_changed",
        "instance",
        instance_id,
    )
    assert first.data["previousStatus"] is None
    assert first.data["score"] == 100
    assert first.data["grade"] == "A"
    assert worse.data["status"] == "unhealthy"
    assert worse.data["previousStatus"] == "healthy"
    assert worse.data["score"] < first.data["score"]


async def test_an_event_taken_from_jetstream_reads_the_same(
    store: EventStore, public: PublicEvents
) -> None:
    instance_id = str(uuid.uuid4())
    update = InstanceUpdated(instance_id=instance_id, name="Renamed", updated_at=T0)
    recorded = await appended(store, instance_stream(instance_id), update)

    from_wire = await public.of(logged_from_wire(decode_wire(payload_for(recorded))))

    assert from_wire == await public.of(recorded)


def test_every_public_name_is_one_issue_17_lists() -> None:
    assert set(EVENT_NAMES) == {
        "instance.created",
        "instance.provisioned",
        "instance.started",
        "instance.stopped",
        "instance.restarted",
        "instance.updated",
        "instance.redeployed",
        "instance.failed",
        "instance.deleted",
        "instance.health_changed",
        "server.created",
        "server.active",
        "server.unreachable",
        "server.reachable",
        "server.deleted",
        "operation.failed",
    }
