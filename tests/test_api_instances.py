"""Instance endpoints through HTTP: the success paths and each documented error."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from api_fixtures import (
    Caller,
    new_instance,
    new_server,
    record,
    running_instance,
    stream_types,
)

from events.health import HealthObserved, HealthWindow, health_stream
from events.instance import (
    InstanceRestarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    instance_stream,
)
from events.reservation import slug_stream
from events.store import EventStore

INSTANCE_FIELDS = {
    "id", "name", "slug", "serverId", "projectId", "templateId", "branch", "environmentType",
    "odooVersion", "odooEdition", "status", "statusMessage", "activeColor", "addonsPath",
    "envVars", "autoSubdomain", "domains", "httpPort", "httpPortHost", "longpollingPort",
    "longpollingPortHost", "workers", "maxCronThreads", "limitMemoryHard", "limitMemorySoft",
    "limitTimeCpu", "limitTimeReal", "logLevel", "mcpWriteEnabled", "mcpModelAccess", "healthScore",
    "healthScoreGrade", "healthScoreUpdatedAt", "lastSeenAt", "lastRestartAt", "restartCount",
    "enterpriseBuildId", "enterpriseDeployedAt", "enterpriseUpdateAvailable",
    "wkhtmltopdfStatus", "wkhtmltopdfVersion", "lastBackupAt", "lastBackupStatus", "createdAt",
    "updatedAt", "version",
}  # fmt: skip


async def test_creating_an_instance_answers_202_with_the_new_instance(alice: Caller) -> None:
    server_id = await new_server(alice)

    response = await alice.post(
        "/api/instances", json={"name": "Acme Production", "serverId": server_id}
    )

    assert response.status_code == 202
    body = response.json()
    assert set(body) == INSTANCE_FIELDS
    assert body["status"] == "creating"
    assert body["slug"] == "acme-production"
    assert response.headers["location"] == f"/api/instances/{body['id']}"
    assert response.headers["etag"] == '"2"'
    assert int(response.headers["x-position"]) > 0


async def test_a_new_instance_gets_the_documented_defaults(alice: Caller, settings: object) -> None:
    server_id = await new_server(alice)

    body = await new_instance(alice, server_id, slug="acme")

    assert body["odooVersion"] == "19.0"
    assert body["odooEdition"] == "community"
    assert body["environmentType"] == "development"
    assert (body["httpPort"], body["longpollingPort"]) == (8069, 8072)
    assert (body["httpPortHost"], body["longpollingPortHost"]) == (20000, 20001)
    assert body["autoSubdomain"] == "acme.odoo.localhost"
    assert body["domains"][0]["domain"] == "acme.odoo.localhost"
    assert body["envVars"] == {}
    assert body["mcpWriteEnabled"] is False
    assert body["activeColor"] is None


async def test_production_gets_more_workers_than_development(alice: Caller) -> None:
    server_id = await new_server(alice)

    production = await new_instance(alice, server_id, environmentType="production")
    development = await new_instance(alice, server_id, environmentType="development")

    assert production["workers"] > development["workers"] > 0
    assert production["limitMemoryHard"] > production["limitMemorySoft"]


async def test_each_instance_on_a_server_gets_its_own_host_ports(alice: Caller) -> None:
    server_id = await new_server(alice)

    first = await new_instance(alice, server_id)
    second = await new_instance(alice, server_id)

    ports = {first["httpPortHost"], first["longpollingPortHost"]}
    assert ports.isdisjoint({second["httpPortHost"], second["longpollingPortHost"]})


async def test_create_records_the_instance_and_requests_provisioning(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)

    body = await new_instance(alice, server_id, slug="acme")

    assert await stream_types(store, instance_stream(body["id"])) == [
        "InstanceCreated",
        "ProvisioningRequested",
    ]
    assert await stream_types(store, slug_stream("org-a", "acme")) == ["SlugReserved"]
    assert await stream_types(store, f"ports-{server_id}") == ["PortsReserved"]


async def test_secrets_are_stored_sealed(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)

    body = await new_instance(alice, server_id, envVars={"API_TOKEN": "s3cret-value"})

    created = (await store.read_stream(instance_stream(body["id"])))[0]
    data = json.loads(created.data)
    assert "s3cret-value" not in created.data
    assert set(data["env_vars"]["API_TOKEN"]) == {"sealed"}
    assert set(data["admin_password"]) == set(data["db_password"]) == {"sealed"}
    assert set(data["admin_user_password"]) == {"sealed"}
    assert body["envVars"] == {"API_TOKEN": "********"}


async def test_a_created_instance_can_be_read_back(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.get(f"/api/instances/{created['id']}")

    assert response.status_code == 200
    assert response.json() == created
    assert response.headers["etag"] == '"2"'


async def test_an_unknown_instance_is_404_problem(alice: Caller) -> None:
    response = await alice.get("/api/instances/5f0c3b54-8d1b-4c7e-9a37-1f3d2a4b5c6d")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_the_list_pages_newest_first(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = [await new_instance(alice, server_id) for _ in range(5)]

    first = await alice.get("/api/instances", params={"limit": 3})
    second = await alice.get(
        "/api/instances", params={"limit": 3, "cursor": first.json()["nextCursor"]}
    )

    ids = [i["id"] for i in first.json()["instances"] + second.json()["instances"]]
    assert ids == [i["id"] for i in reversed(created)]
    assert second.json()["nextCursor"] is None


async def test_the_list_filters_by_server_and_status(alice: Caller, store: EventStore) -> None:
    server_a, server_b = await new_server(alice), await new_server(alice)
    on_a = await new_instance(alice, server_a)
    running = await running_instance(alice, store, server_b)

    by_server = await alice.get("/api/instances", params={"server_id": server_a})
    by_status = await alice.get("/api/instances", params={"status": "running"})

    assert [i["id"] for i in by_server.json()["instances"]] == [on_a["id"]]
    assert [i["id"] for i in by_status.json()["instances"]] == [running["id"]]


async def test_a_bad_cursor_or_filter_is_400(alice: Caller) -> None:
    bad_cursor = await alice.get("/api/instances", params={"cursor": "not-a-cursor"})
    bad_status = await alice.get("/api/instances", params={"status": "sleeping"})
    bad_limit = await alice.get("/api/instances", params={"limit": 0})

    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["errors"][0]["field"] == "cursor"
    assert bad_status.status_code == 400
    assert bad_limit.status_code == 400


async def test_an_update_changes_only_what_it_names(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id, addonsPath="/mnt/extra-addons")

    response = await alice.patch(
        f"/api/instances/{created['id']}", json={"name": "Renamed", "mcpWriteEnabled": True}
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["mcpWriteEnabled"]) == ("Renamed", True)
    assert body["addonsPath"] == "/mnt/extra-addons"
    assert response.headers["etag"] == '"3"'
    events = await store.read_stream(instance_stream(created["id"]))
    assert events[-1].event_type == "InstanceUpdated"
    assert set(json.loads(events[-1].data)) == {
        "instance_id",
        "name",
        "mcp_write_enabled",
        "updated_at",
    }


async def test_an_update_that_changes_nothing_records_nothing(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id, envVars={"A": "1"})

    response = await alice.patch(
        f"/api/instances/{created['id']}", json={"name": created["name"], "envVars": {"A": "1"}}
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    assert "x-position" not in response.headers
    assert len(await store.read_stream(instance_stream(created["id"]))) == 2


async def test_env_vars_are_replaced_as_a_whole(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id, envVars={"A": "1", "B": "2"})

    response = await alice.patch(f"/api/instances/{created['id']}", json={"envVars": {"C": "3"}})

    assert response.json()["envVars"] == {"C": "********"}
    again = await alice.get(f"/api/instances/{created['id']}", params={"reveal": "envVars"})
    assert again.json()["envVars"] == {"C": "3"}


async def test_an_update_needs_at_least_one_field(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.patch(f"/api/instances/{created['id']}", json={})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


async def test_if_match_with_the_current_version_updates(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.patch(
        f"/api/instances/{created['id']}", json={"name": "New"}, headers={"If-Match": '"2"'}
    )

    assert response.status_code == 200
    assert response.headers["etag"] == '"3"'


async def test_if_match_with_another_version_is_412(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    await alice.patch(f"/api/instances/{created['id']}", json={"name": "First"})

    response = await alice.patch(
        f"/api/instances/{created['id']}", json={"name": "Second"}, headers={"If-Match": '"2"'}
    )

    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert len(await store.read_stream(instance_stream(created["id"]))) == 3


async def test_a_malformed_if_match_is_400(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.patch(
        f"/api/instances/{created['id']}", json={"name": "x"}, headers={"If-Match": "W/2"}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "If-Match"


async def _renamed_by_another_writer(store: EventStore, instance_id: str, name: str) -> None:
    """A write this API process did not make (another replica's), so the state it remembers
    of the instance is one version behind."""
    changed = InstanceUpdated(instance_id=instance_id, name=name, updated_at=datetime.now(UTC))
    await record(store, instance_stream(instance_id), changed)


async def test_an_update_after_another_writer_s_change_answers_with_both(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    url = f"/api/instances/{created['id']}"
    await alice.patch(url, json={"name": "First"})
    await _renamed_by_another_writer(store, created["id"], "Elsewhere")

    response = await alice.patch(url, json={"mcpWriteEnabled": True})

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["mcpWriteEnabled"]) == ("Elsewhere", True)
    assert response.headers["etag"] == '"5"'
    assert (await stream_types(store, instance_stream(created["id"])))[-1] == "InstanceUpdated"


async def test_an_update_to_what_another_writer_changed_away_is_recorded(
    alice: Caller, store: EventStore
) -> None:
    """The remembered state says the name is already "First": a change to nothing there, but
    not on the stream as it is."""
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    url = f"/api/instances/{created['id']}"
    await alice.patch(url, json={"name": "First"})
    await _renamed_by_another_writer(store, created["id"], "Elsewhere")

    response = await alice.patch(url, json={"name": "First"})

    assert response.status_code == 200
    assert response.json()["name"] == "First"
    assert response.headers["etag"] == '"5"'
    assert "x-position" in response.headers


async def test_if_match_names_a_version_another_writer_made(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    url = f"/api/instances/{created['id']}"
    await alice.patch(url, json={"name": "First"})
    await _renamed_by_another_writer(store, created["id"], "Elsewhere")

    response = await alice.patch(url, json={"name": "Second"}, headers={"If-Match": '"4"'})

    assert response.status_code == 200
    assert response.headers["etag"] == '"5"'


async def test_another_organization_cannot_write_an_instance_this_process_remembers(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    running = await running_instance(alice, store, server_id)
    url = f"/api/instances/{running['id']}"
    await alice.patch(url, json={"name": "Remembered"})

    patched = await mallory.patch(url, json={"name": "Taken"})
    controlled = await mallory.post(f"{url}/control", json={"action": "stop"})
    deleted = await mallory.delete(url)

    assert (patched.status_code, controlled.status_code, deleted.status_code) == (404, 404, 404)
    assert (await stream_types(store, instance_stream(running["id"])))[-1] == "InstanceUpdated"


async def test_delete_answers_202_removing(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)
    running = await running_instance(alice, store, server_id)

    response = await alice.delete(f"/api/instances/{running['id']}")

    assert response.status_code == 202
    assert response.json()["status"] == "removing"
    assert (await stream_types(store, instance_stream(running["id"])))[-1] == "RemovalRequested"


async def test_delete_again_while_removing_is_202_and_records_nothing(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    await alice.delete(f"/api/instances/{created['id']}")

    again = await alice.delete(f"/api/instances/{created['id']}")

    assert again.status_code == 202
    assert again.json()["status"] == "removing"
    assert await stream_types(store, instance_stream(created["id"])) == [
        "InstanceCreated",
        "ProvisioningRequested",
        "RemovalRequested",
    ]


async def test_delete_while_creating_cancels_provisioning(alice: Caller, store: EventStore) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    await alice.delete(f"/api/instances/{created['id']}")

    requested, removal = (await store.read_stream(instance_stream(created["id"])))[1:]
    provisioning = json.loads(requested.data)["operation_id"]
    assert json.loads(removal.data)["cancels_operation_id"] == provisioning


async def test_stop_start_and_restart_follow_the_allowed_from_rules(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    running = await running_instance(alice, store, server_id)
    url = f"/api/instances/{running['id']}/control"

    stop = await alice.post(url, json={"action": "stop"})
    restart_while_stopping = await alice.post(url, json={"action": "restart"})
    await record(
        store,
        instance_stream(running["id"]),
        InstanceStopped(instance_id=running["id"], operation_id="op"),
    )
    start = await alice.post(url, json={"action": "start"})

    assert (stop.status_code, stop.json()["status"]) == (202, "stopping")
    assert restart_while_stopping.status_code == 409
    assert "stopping" in restart_while_stopping.json()["detail"]
    assert (start.status_code, start.json()["status"]) == (202, "starting")


async def test_a_failed_instance_may_be_restarted_but_not_stopped(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)
    failure = ProvisioningFailed(
        instance_id=created["id"], operation_id="op", step="db", message="boom"
    )
    await record(store, instance_stream(created["id"]), failure)
    url = f"/api/instances/{created['id']}/control"

    stop = await alice.post(url, json={"action": "stop"})
    restart = await alice.post(url, json={"action": "restart"})

    assert stop.status_code == 409
    assert restart.status_code == 202


async def test_control_of_a_creating_instance_is_409(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.post(f"/api/instances/{created['id']}/control", json={"action": "start"})

    assert response.status_code == 409
    assert response.json()["type"] == "urn:odoofleet:problem:action-not-allowed"


async def test_time_travel_shows_the_instance_as_it_was(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id, name="Before")
    between = datetime.now(UTC)
    await asyncio.sleep(0.01)  # recorded_at has microsecond resolution: step past `between`
    await alice.patch(f"/api/instances/{created['id']}", json={"name": "After"})

    then = await alice.get(f"/api/instances/{created['id']}", params={"asOf": between.isoformat()})
    before_it_existed = await alice.get(
        f"/api/instances/{created['id']}",
        params={"asOf": (between - timedelta(hours=1)).isoformat()},
    )

    assert then.status_code == 200
    assert then.json()["name"] == "Before"
    assert then.headers["etag"] == '"2"'
    assert before_it_existed.status_code == 404


async def test_a_bad_as_of_is_400(alice: Caller) -> None:
    server_id = await new_server(alice)
    created = await new_instance(alice, server_id)

    response = await alice.get(f"/api/instances/{created['id']}", params={"asOf": "yesterday"})

    assert response.status_code == 400


def _observed(
    instance_id: str, server_id: str, at: datetime, *, restart_count: int = 3, restarts: int = 0
) -> HealthObserved:
    return HealthObserved(
        instance_id=instance_id,
        server_id=server_id,
        status="healthy",
        container_state="running",
        http_status=200,
        response_time_ms=15.0,
        restart_count=restart_count,
        oom_killed=False,
        memory_bytes=700 * 2**20,
        memory_limit_bytes=1000 * 2**20,
        cpu_percent=2.0,
        message="ok",
        observed_at=at,
        window=HealthWindow(
            started_at=at - timedelta(minutes=5),
            probes=100,
            failures=0,
            latency_p50_ms=12.0,
            latency_p95_ms=20.0,
            latency_max_ms=30.0,
            restarts=restarts,
            oom_kills=0,
            peak_memory_bytes=700 * 2**20,
        ),
    )


HEALTH_SHOWN = (
    "healthScore",
    "healthScoreGrade",
    "healthScoreUpdatedAt",
    "lastSeenAt",
    "lastRestartAt",
    "restartCount",
)


async def test_a_patch_answers_with_the_health_fields_a_get_showed(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    instance = await running_instance(alice, store, server_id)
    position = await record(
        store,
        health_stream(instance["id"]),
        _observed(instance["id"], server_id, datetime.now(UTC), restarts=3),
    )
    await alice.get(
        f"/api/instances/{instance['id']}/health-score", headers={"X-Min-Position": position}
    )
    before = (await alice.get(f"/api/instances/{instance['id']}")).json()

    patched = await alice.patch(f"/api/instances/{instance['id']}", json={"name": "Renamed"})

    assert before["healthScore"] is not None
    assert before["lastSeenAt"] is not None
    assert before["lastRestartAt"] is not None
    assert {name: patched.json()[name] for name in HEALTH_SHOWN} == {
        name: before[name] for name in HEALTH_SHOWN
    }


async def _restarts_after(alice: Caller, instance_id: str, position: str) -> tuple[Any, ...]:
    """(health restartCount, Instance restartCount, Instance lastRestartAt) once both read
    models are at `position`."""
    health = await alice.get(
        f"/api/instances/{instance_id}/health", headers={"X-Min-Position": position}
    )
    shown = (
        await alice.get(f"/api/instances/{instance_id}", headers={"X-Min-Position": position})
    ).json()
    return health.json()["restartCount"], shown["restartCount"], shown["lastRestartAt"]


async def test_the_instance_and_its_health_show_one_restart_count_docker_s(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    instance = await running_instance(alice, store, server_id)
    instance_id, health = instance["id"], health_stream(instance["id"])
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    first = _observed(instance_id, server_id, t0, restart_count=0)
    unobserved = (await alice.get(f"/api/instances/{instance_id}")).json()
    at_first = await _restarts_after(alice, instance_id, await record(store, health, first))

    # A restart asked for through the API is an operation and an audit entry, not a count.
    control = await alice.post(f"/api/instances/{instance_id}/control", json={"action": "restart"})
    done = InstanceRestarted(instance_id=instance_id, operation_id="op-r", restarted_at=t0)
    after_control = await _restarts_after(
        alice, instance_id, await record(store, instance_stream(instance_id), done)
    )
    crashed = _observed(
        instance_id, server_id, t0 + timedelta(minutes=1), restart_count=3, restarts=3
    )
    after_crashes = await _restarts_after(alice, instance_id, await record(store, health, crashed))
    calm = _observed(instance_id, server_id, t0 + timedelta(minutes=2), restart_count=3)
    later = await _restarts_after(alice, instance_id, await record(store, health, calm))
    audit = await alice.get(
        "/api/audit-logs",
        params={"action": "instance.restarted"},
        headers={"X-Min-Position": control.headers["x-position"]},
    )

    assert (unobserved["restartCount"], unobserved["lastRestartAt"]) == (None, None)
    assert at_first == (0, 0, None)
    assert control.status_code == 202
    assert after_control == (0, 0, None)
    assert after_crashes == (3, 3, "2026-03-01T12:01:00Z")
    assert later == after_crashes
    assert [item["resourceId"] for item in audit.json()["items"]] == [instance_id]
