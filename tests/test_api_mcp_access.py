"""An instance's MCP settings through HTTP (issue 18): its Odoo model allowlist
(PATCH mcpModelAccess) and the rotation of its MCP Odoo credentials."""

from __future__ import annotations

import json

from api_fixtures import Caller, new_instance, new_server, running_instance

from events.instance import instance_stream
from events.store import EventStore

DEFAULT = {"read": ["*"], "write": ["*"], "unlink": ["*"]}


async def test_the_model_allowlist_defaults_to_every_model_and_a_patch_changes_it(
    alice: Caller, store: EventStore
) -> None:
    created = await new_instance(alice, await new_server(alice))
    narrow = {"read": ["res.partner", "sale.*"], "write": ["res.partner"], "unlink": []}

    response = await alice.patch(f"/api/instances/{created['id']}", json={"mcpModelAccess": narrow})

    assert created["mcpModelAccess"] == DEFAULT
    assert response.status_code == 200, response.text
    assert response.json()["mcpModelAccess"] == narrow
    shown = await alice.get(
        f"/api/instances/{created['id']}",
        headers={"X-Min-Position": response.headers["x-position"]},
    )
    assert shown.json()["mcpModelAccess"] == narrow
    [*_, updated] = await store.read_stream(instance_stream(created["id"]))
    assert updated.event_type == "InstanceUpdated"
    assert json.loads(updated.data)["mcp_model_access"] == narrow


async def test_a_malformed_model_allowlist_is_a_400_naming_the_field(alice: Caller) -> None:
    created = await new_instance(alice, await new_server(alice))
    path = f"/api/instances/{created['id']}"

    bad_glob = await alice.patch(path, json={"mcpModelAccess": {"read": ["res partner; drop"]}})
    unknown = await alice.patch(path, json={"mcpModelAccess": {"delete": ["*"]}})
    not_a_list = await alice.patch(path, json={"mcpModelAccess": {"write": "res.partner"}})

    for response, field in ((bad_glob, "mcpModelAccess.read"), (unknown, "delete"),
                            (not_a_list, "mcpModelAccess.write")):  # fmt: skip
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        [error] = response.json()["errors"]
        assert error["field"].startswith(field), error


async def test_rotating_the_mcp_credentials_is_an_audited_operation_of_a_running_instance(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    running = await running_instance(alice, store, server_id)
    creating = await new_instance(alice, server_id)

    accepted = await alice.post(f"/api/instances/{running['id']}/mcp/rotate-credentials")
    refused = await alice.post(f"/api/instances/{creating['id']}/mcp/rotate-credentials")
    unknown = await alice.post(
        "/api/instances/00000000-0000-4000-8000-000000000000/mcp/rotate-credentials"
    )

    assert accepted.status_code == 202, accepted.text
    operation = accepted.json()
    assert (operation["type"], operation["status"]) == ("mcp-credentials", "pending")
    [*_, requested] = await store.read_stream(instance_stream(running["id"]))
    assert requested.event_type == "McpCredentialsRequested"
    assert json.loads(requested.data)["operation_id"] == operation["id"]
    assert refused.status_code == 409
    assert unknown.status_code == 404
    audit = await alice.get(
        "/api/audit-logs",
        params={"action": "instance.mcp_credentials_rotated"},
        headers={"X-Min-Position": accepted.headers["x-position"]},
    )
    (item,) = audit.json()["items"]
    assert (item["resourceId"], item["userId"]) == (running["id"], "alice")


async def test_a_viewer_cannot_rotate_the_mcp_credentials(
    alice: Caller, viewer: Caller, store: EventStore
) -> None:
    running = await running_instance(alice, store, await new_server(alice))

    response = await viewer.post(f"/api/instances/{running['id']}/mcp/rotate-credentials")

    assert response.status_code == 403
