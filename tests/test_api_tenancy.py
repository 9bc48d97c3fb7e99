"""Another organization's resources do not exist: 404 on every endpoint, absent from lists,
filters and the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from api_fixtures import Caller, new_instance, new_server


@pytest.fixture
async def alices(alice: Caller) -> dict[str, Any]:
    """A server and an instance of org-a, and the log position after them."""
    server_id = await new_server(alice)
    response = await alice.post(
        "/api/instances", json={"name": "Acme", "serverId": server_id, "slug": "acme"}
    )
    return {
        "server": server_id,
        "instance": response.json()["id"],
        "after": {"X-Min-Position": response.headers["x-position"]},
    }


ENDPOINTS = [
    ("GET", "/api/instances/{instance}", None),
    ("PATCH", "/api/instances/{instance}", {"name": "stolen"}),
    ("DELETE", "/api/instances/{instance}", None),
    ("POST", "/api/instances/{instance}/control", {"action": "restart"}),
    ("GET", "/api/instances/{instance}/health", None),
    ("GET", "/api/instances/{instance}/health-score", None),
    ("GET", "/api/instances/{instance}/operations", None),
    ("GET", "/api/instances/{instance}/events", None),
    ("GET", "/api/servers/{server}", None),
    ("DELETE", "/api/servers/{server}", None),
    ("POST", "/api/servers/{server}/validate", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_another_organizations_resource_is_404(
    mallory: Caller, alices: dict[str, Any], method: str, path: str, body: Any
) -> None:
    url = path.format(**alices)

    response = await mallory.request(method, url, json=body, headers=alices["after"])

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_another_organizations_time_travel_is_404(
    mallory: Caller, alices: dict[str, Any]
) -> None:
    response = await mallory.get(
        f"/api/instances/{alices['instance']}", params={"asOf": "2100-01-01T00:00:00Z"}
    )

    assert response.status_code == 404


async def test_lists_and_filters_show_only_the_callers_organization(
    mallory: Caller, alices: dict[str, Any]
) -> None:
    after = alices["after"]

    instances = await mallory.get("/api/instances", headers=after)
    by_server = await mallory.get(
        "/api/instances", params={"server_id": alices["server"]}, headers=after
    )
    servers = await mallory.get("/api/servers", headers=after)

    assert instances.json() == {"instances": [], "nextCursor": None}
    assert by_server.json()["instances"] == []
    assert servers.json() == {"servers": []}


async def test_the_audit_trail_shows_only_the_callers_organization(
    alice: Caller, mallory: Caller, alices: dict[str, Any]
) -> None:
    own = await alice.get("/api/audit-logs", headers=alices["after"])
    theirs = await mallory.get("/api/audit-logs", headers=alices["after"])
    filtered = await mallory.get(
        "/api/audit-logs", params={"resource_id": alices["instance"]}, headers=alices["after"]
    )

    assert own.json()["total"] >= 2
    assert theirs.json()["total"] == 0
    assert filtered.json()["items"] == []


async def test_an_instance_cannot_be_placed_on_another_organizations_server(
    mallory: Caller, alices: dict[str, Any]
) -> None:
    response = await mallory.post(
        "/api/instances", json={"name": "x", "serverId": alices["server"]}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "serverId"


async def test_a_slug_is_unique_per_organization_only(
    mallory: Caller, alices: dict[str, Any]
) -> None:
    server_id = await new_server(mallory)

    created = await new_instance(mallory, server_id, slug="acme")

    assert created["slug"] == "acme"
