"""The health score through HTTP: every factor explained, and the same score on the instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api_fixtures import Caller, new_server, record, running_instance

from events.health import HealthObserved, HealthStatus, HealthWindow, health_stream
from events.store import EventStore


def observed(
    instance_id: str, server_id: str, status: HealthStatus, at: datetime, failures: int
) -> HealthObserved:
    return HealthObserved(
        instance_id=instance_id,
        server_id=server_id,
        status=status,
        container_state="running",
        http_status=200 if status == "healthy" else 500,
        response_time_ms=15.0,
        restart_count=0,
        oom_killed=False,
        memory_bytes=700 * 2**20,
        memory_limit_bytes=1000 * 2**20,
        cpu_percent=2.0,
        message="ok" if status == "healthy" else "/web/health answered HTTP 500",
        observed_at=at,
        window=HealthWindow(
            started_at=at - timedelta(minutes=5),
            probes=100,
            failures=failures,
            latency_p50_ms=12.0,
            latency_p95_ms=20.0,
            latency_max_ms=30.0,
            restarts=0,
            oom_kills=0,
            peak_memory_bytes=700 * 2**20,
        ),
    )


async def observed_twice(
    alice: Caller, store: EventStore, earlier: timedelta
) -> tuple[dict[str, Any], str]:
    """A running instance seen healthy `earlier` ago, then now with 7 of 100 probes failed:
    the instance and the position to read at."""
    server_id = await new_server(alice)
    instance = await running_instance(alice, store, server_id)
    now = datetime.now(UTC)
    position = await record(
        store,
        health_stream(instance["id"]),
        observed(instance["id"], server_id, "healthy", now - earlier, 0),
        observed(instance["id"], server_id, "unhealthy", now, 7),
    )
    return instance, position


async def test_the_health_score_explains_every_factor_and_matches_the_instance(
    alice: Caller, store: EventStore
) -> None:
    instance, position = await observed_twice(alice, store, earlier=timedelta(minutes=6))

    response = await alice.get(
        f"/api/instances/{instance['id']}/health-score", headers={"X-Min-Position": position}
    )
    detail = (await alice.get(f"/api/instances/{instance['id']}")).json()
    listed = (await alice.get("/api/instances")).json()["instances"]

    body = response.json()
    assert response.status_code == 200
    assert (body["score"], body["grade"]) == (70, "C")
    assert [f["name"] for f in body["factors"]] == [
        "availability",
        "latency",
        "stability",
        "headroom",
        "freshness",
    ]
    assert sum(f["weight"] for f in body["factors"]) == 1.0
    availability, _, _, headroom, freshness = body["factors"]
    assert availability == {
        "name": "availability",
        "weight": 0.4,
        "score": 32.0,
        "value": 96.5,
        "detail": "193 of 200 probes passed in the last 24 h",
    }
    assert (headroom["score"], headroom["value"]) == (75.0, 70.0)
    assert freshness["score"] == 100.0
    shown = {k: detail[k] for k in ("healthScore", "healthScoreGrade", "healthScoreUpdatedAt")}
    assert shown == {
        "healthScore": body["score"],
        "healthScoreGrade": body["grade"],
        "healthScoreUpdatedAt": body["updatedAt"],
    }
    assert [(i["healthScore"], i["healthScoreGrade"]) for i in listed] == [(70, "C")]
    assert detail["lastSeenAt"] is not None
