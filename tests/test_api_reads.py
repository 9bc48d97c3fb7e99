"""The read-only instance views and the audit trail through HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

from api_fixtures import Caller, new_instance, new_server, record

from events.health import HealthObserved, HealthWindow, health_stream
from events.operation import OperationStarted, OperationStepCompleted, operation_stream
from events.store import EventStore

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


# API.md "Health", every field always present.
HEALTH_FIELDS = {
    "instanceId", "status", "containerState", "httpStatus", "responseTimeMs", "restartCount",
    "oomKilled", "memoryBytes", "memoryLimitBytes", "cpuPercent", "lastSeenAt", "lastCheckedAt",
    "message",
}  # fmt: skip


async def test_health_is_unknown_until_the_first_observation(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.get(f"/api/instances/{created['id']}/health")

    assert response.status_code == 200
    assert response.json()["status"] == "unknown"
    assert set(response.json()) == HEALTH_FIELDS
    assert response.json()["instanceId"] == created["id"]


async def test_health_shows_the_latest_observation(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    observation = HealthObserved(
        instance_id=created["id"],
        server_id=server_id,
        status="healthy",
        container_state="running",
        http_status=200,
        response_time_ms=12.5,
        restart_count=2,
        oom_killed=False,
        memory_bytes=1 << 28,
        memory_limit_bytes=1 << 31,
        cpu_percent=3.0,
        message="ok",
        observed_at=NOW,
        window=HealthWindow(
            started_at=NOW,
            probes=1,
            failures=0,
            latency_p50_ms=12.5,
            latency_p95_ms=12.5,
            latency_max_ms=12.5,
            restarts=0,
            oom_kills=0,
            peak_memory_bytes=None,
        ),
    )
    position = await record(store, health_stream(created["id"]), observation)

    response = await alice.get(
        f"/api/instances/{created['id']}/health",
        headers={"X-Min-Position": position},
    )

    body = response.json()
    assert set(body) == HEALTH_FIELDS
    assert (body["status"], body["httpStatus"], body["responseTimeMs"]) == ("healthy", 200, 12.5)
    assert body["restartCount"] == 2
    assert body["lastCheckedAt"].startswith("2026-01-02T03:04:05")


async def test_the_health_score_is_null_until_computed(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.get(f"/api/instances/{created['id']}/health-score")

    assert response.json() == {
        "instanceId": created["id"],
        "score": None,
        "grade": None,
        "updatedAt": None,
        "factors": [],
    }


async def test_operations_list_the_sagas_and_their_steps(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    operation_id = "0d5f3c1e-7a3b-4c55-8f1e-2b9d6a7c8e90"
    position = await record(
        store,
        operation_stream(operation_id),
        OperationStarted(
            operation_id=operation_id,
            type="provision",
            instance_id=created["id"],
            server_id=server_id,
            worker="w1",
        ),
        OperationStepCompleted(
            operation_id=operation_id, step="preflight", duration_ms=40, output="ok"
        ),
    )

    response = await alice.get(
        f"/api/instances/{created['id']}/operations", headers={"X-Min-Position": position}
    )

    (operation,) = response.json()["operations"]
    assert (operation["id"], operation["type"], operation["status"]) == (
        operation_id,
        "provision",
        "running",
    )
    assert operation["steps"][0]["name"] == "preflight"
    assert operation["steps"][0]["durationMs"] == 40


async def test_events_show_the_instances_history_with_secrets_masked(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id, envVars={"TOKEN": "s3cret"})

    response = await alice.get(f"/api/instances/{created['id']}/events")

    events = response.json()["events"]
    assert [e["type"] for e in events] == ["InstanceCreated", "ProvisioningRequested"]
    assert [e["version"] for e in events] == [1, 2]
    assert events[0]["streamId"] == f"instance-{created['id']}"
    assert events[0]["data"]["env_vars"] == {"TOKEN": "********"}
    assert events[0]["data"]["admin_password"] == "********"
    assert events[0]["metadata"]["actor"]["id"] == "alice"
    assert "s3cret" not in response.text


async def test_the_audit_trail_answers_who_did_what(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id, envVars={"TOKEN": "s3cret"})
    await alice.patch(f"/api/instances/{created['id']}", json={"name": "Renamed"})

    everything = await alice.get("/api/audit-logs")
    updates = await alice.get(
        "/api/audit-logs",
        params={"resource_type": "instance", "action": "instance.updated", "per_page": 10},
    )

    assert everything.json()["total"] == 3
    assert [i["action"] for i in everything.json()["items"]] == [
        "instance.updated",
        "instance.created",
        "server.created",
    ]
    (item,) = updates.json()["items"]
    assert (item["resourceId"], item["userId"], item["userName"]) == (
        created["id"],
        "alice",
        "Alice",
    )
    assert updates.json()["perPage"] == 10
    assert "s3cret" not in everything.text


async def test_audit_filters_are_validated(alice: Caller) -> None:
    bad = [
        {"resource_type": "database"},
        {"page": 0},
        {"per_page": 1000},
        {"start_date": "not-a-date"},
        {"start_date": "2026-01-02T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
    ]
    for params in bad:
        response = await alice.get("/api/audit-logs", params=params)
        assert response.status_code == 400, params
