"""Whatever a client sends gets a 4xx problem+json naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from api_fixtures import Caller, new_instance, new_server


@pytest.fixture
async def server_id(alice: Caller) -> str:
    return await new_server(alice)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"surprise": 1}, "surprise"),
        ({"slug": "A"}, "slug"),
        ({"slug": "-acme"}, "slug"),
        ({"slug": "acme_prod"}, "slug"),
        ({"odooVersion": "14.0"}, "odooVersion"),
        ({"odooEdition": "ultimate"}, "odooEdition"),
        ({"environmentType": "qa"}, "environmentType"),
        ({"envVars": {"lower": "x"}}, "envVars"),
        ({"envVars": {"KEY": "line\nbreak"}}, "envVars"),
        ({"envVars": {"KEY": 1}}, "envVars"),
        ({"branch": "--upload-pack=evil"}, "branch"),
        ({"branch": "feature/../../etc"}, "branch"),
        ({"branch": "main\x00"}, "branch"),
        ({"addonsPath": "relative/addons"}, "addonsPath"),
        ({"addonsPath": "/mnt/../etc"}, "addonsPath"),
        ({"addonsPath": "/mnt/a;rm -rf /"}, "addonsPath"),
        ({"projectId": "x" * 101}, "projectId"),
        ({"serverId": "not-a-uuid"}, "serverId"),
        ({"serverId": "5f0c3b54-8d1b-4c7e-9a37-1f3d2a4b5c6d"}, "serverId"),
    ],
)
async def test_an_invalid_create_is_400_naming_the_field(
    alice: Caller, server_id: str, changes: dict[str, Any], field: str
) -> None:
    body = {"name": "Acme", "serverId": server_id} | changes
    body = {key: value for key, value in body.items() if value is not None}

    response = await alice.post("/api/instances", json=body)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert problem["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "x",', "application/json"),
        (b"[1, 2]", "application/json"),
        (b"", "application/json"),
        (b"name=x", "application/x-www-form-urlencoded"),
        (b'{"name": "x"}', "text/plain"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    alice: Caller, content: bytes, content_type: str
) -> None:
    response = await alice.post(
        "/api/instances", content=content, headers={"Content-Type": content_type}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_body_over_one_mebibyte_is_413(alice: Caller, server_id: str) -> None:
    body = {"name": "x", "serverId": server_id, "envVars": {"BIG": "x" * 30_000}}
    padding = {f"K{i}": "x" * 30_000 for i in range(40)}

    response = await alice.post("/api/instances", json=body | {"envVars": padding})

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    ["/api/instances/42", "/api/instances/not-a-uuid/health", "/api/servers/x", "/api/nothing"],
)
async def test_a_path_that_names_nothing_is_404(alice: Caller, path: str) -> None:
    response = await alice.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_wrong_method_is_405_problem(alice: Caller) -> None:
    response = await alice.put("/api/instances", json={})

    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unknown_action_is_400(alice: Caller, server_id: str) -> None:
    created = await new_instance(alice, server_id)

    response = await alice.post(
        f"/api/instances/{created['id']}/control", json={"action": "explode"}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "action"


async def test_a_taken_slug_is_409(alice: Caller, server_id: str) -> None:
    await new_instance(alice, server_id, slug="acme")

    response = await alice.post(
        "/api/instances", json={"name": "Other", "serverId": server_id, "slug": "acme"}
    )

    assert response.status_code == 409
    assert response.json()["type"] == "urn:odoofleet:problem:slug-taken"


async def test_a_generated_slug_that_is_taken_gets_a_suffix(alice: Caller, server_id: str) -> None:
    first = await new_instance(alice, server_id, name="Acme Shop")
    second = await new_instance(alice, server_id, name="Acme Shop")
    short = await new_instance(alice, server_id, name="A")

    assert first["slug"] == "acme-shop"
    assert second["slug"].startswith("acme-shop-")
    assert short["slug"].startswith("a-")


@pytest.mark.parametrize(
    "name", ["ODOO_LIST_DB", "ODOO_DBFILTER", "ODOO_RC", "PGHOST", "PGPASSWORD", "PGSSLMODE"]
)
async def test_env_vars_odoo_or_libpq_read_ahead_of_odoo_conf_are_refused(
    alice: Caller, server_id: str, name: str
) -> None:
    created = await new_instance(alice, server_id)
    env = {"SMTP_HOST": "mail", name: "x"}

    refused_create = await alice.post(
        "/api/instances", json={"name": "Acme", "serverId": server_id, "envVars": env}
    )
    refused_update = await alice.patch(f"/api/instances/{created['id']}", json={"envVars": env})
    kept = await alice.get(f"/api/instances/{created['id']}")

    for response in (refused_create, refused_update):
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert error["field"] == "envVars"
        assert name in error["message"]
        assert "SMTP_HOST" not in error["message"]
    assert kept.json()["envVars"] == {}
