"""The service around the endpoints: the OpenAPI document, the probes, and a database
outage answered with 503 (never 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from api_fixtures import TEST_HOST_PORTS, Caller, client_of, mint, serving
from litestar import Litestar
from psycopg_pool import AsyncConnectionPool

from api.app import create_app
from events.pool import Pool
from odoofleet.settings import Settings

API_MD = {
    ("get", "/api/instances"),
    ("post", "/api/instances"),
    ("get", "/api/instances/{instance_id}"),
    ("patch", "/api/instances/{instance_id}"),
    ("delete", "/api/instances/{instance_id}"),
    ("post", "/api/instances/{instance_id}/control"),
    ("get", "/api/instances/{instance_id}/health"),
    ("get", "/api/instances/{instance_id}/health-score"),
    ("get", "/api/instances/{instance_id}/events"),
    ("get", "/api/instances/{instance_id}/operations"),
    ("get", "/api/servers"),
    ("post", "/api/servers"),
    ("get", "/api/servers/{server_id}"),
    ("delete", "/api/servers/{server_id}"),
    ("post", "/api/servers/{server_id}/validate"),
    ("get", "/api/audit-logs"),
}


@pytest.fixture
async def document(anonymous: Caller) -> dict[str, Any]:
    response = await anonymous.get("/schema/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


async def test_the_openapi_document_describes_every_endpoint(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert operations(document).keys() >= API_MD


async def test_every_api_operation_needs_the_bearer_scheme(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["BearerToken"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for key in API_MD:
        assert operations(document)[key]["security"] == [{"BearerToken": []}], key


async def test_every_api_operation_documents_its_errors_as_problems(
    document: dict[str, Any],
) -> None:
    for key in API_MD:
        responses = operations(document)[key]["responses"]
        for status in ("401", "403"):
            assert "application/problem+json" in responses[status]["content"], key
    ops = operations(document)
    assert "412" in ops[("patch", "/api/instances/{instance_id}")]["responses"]
    assert "409" in ops[("post", "/api/instances")]["responses"]
    assert "422" in ops[("post", "/api/instances")]["responses"]


async def test_bodies_and_objects_are_camel_case(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]

    assert {"name", "serverId", "envVars"} <= set(schemas["CreateInstanceBody"]["properties"])
    assert {"httpPortHost", "healthScoreGrade", "version"} <= set(schemas["Instance"]["properties"])
    assert {"sshUser", "maxSshSessions"} <= set(schemas["CreateServerBody"]["properties"])
    assert "sshPrivateKey" not in schemas["Server"]["properties"]


async def test_the_interactive_page_is_served(anonymous: Caller) -> None:
    response = await anonymous.get("/schema")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_healthz_and_readyz_answer_when_all_is_up(anonymous: Caller) -> None:
    alive = await anonymous.get("/healthz")
    ready = await anonymous.get("/readyz")

    assert alive.json() == {"status": "ok"}
    assert ready.json() == {"status": "ready", "checks": {"postgres": "ok", "nats": "ok"}}


@pytest.fixture
async def unreachable_database(settings: Settings) -> AsyncIterator[Pool]:
    pool: Pool = AsyncConnectionPool(
        "postgresql://postgres@127.0.0.1:1/none",
        min_size=1,
        open=False,
        timeout=0.3,
        kwargs={"autocommit": True, "connect_timeout": 1},
    )
    await pool.open(wait=False)
    yield pool
    await pool.close()


@pytest.fixture
async def outage_app(settings: Settings, unreachable_database: Pool) -> AsyncIterator[Litestar]:
    broken = msgspec.structs.replace(settings, nats_url="nats://127.0.0.1:1")
    app = create_app(broken.for_api(), pool=unreachable_database, host_ports=TEST_HOST_PORTS)
    async with serving(app) as running:
        yield running


async def test_a_database_outage_is_503_problem(outage_app: Litestar, settings: Settings) -> None:
    async with client_of(outage_app, mint(settings)) as client:
        reads = await client.get("/api/instances")
        writes = await client.post(
            "/api/instances",
            json={"name": "x", "serverId": "5f0c3b54-8d1b-4c7e-9a37-1f3d2a4b5c6d"},
        )

    for response in (reads, writes):
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "retry-after" in response.headers


async def test_readyz_names_the_dependencies_that_are_down(outage_app: Litestar) -> None:
    async with client_of(outage_app) as client:
        response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"] == {"postgres": "down", "nats": "down"}
    assert "postgres" in response.json()["detail"]


async def test_healthz_answers_during_an_outage(outage_app: Litestar) -> None:
    async with client_of(outage_app) as client:
        assert (await client.get("/healthz")).status_code == 200
