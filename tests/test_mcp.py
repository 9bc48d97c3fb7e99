"""MCP at /api/mcp (issue 18), through the official SDK's own client against the running app:
tools per organization and per key, platform tools, write tools following mcpWriteEnabled,
refusals as tool errors, every call in the audit trail."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from api_fixtures import (
    TEST_HOST_PORTS,
    VIEW_ONLY,
    Caller,
    http_served,
    mint,
    new_server,
    running_instance,
    serving,
)
from litestar import Litestar
from mcp import Client, StdioServerParameters
from mcp_fixtures import Heard, issue_key, mcp_client, structured, tool_names
from waiting import eventually

from api.app import create_app
from events.pool import Pool
from events.store import EventStore
from odoofleet.settings import Settings

PLATFORM_READS = {
    "odoofleet_list_instances",
    "odoofleet_get_instance",
    "odoofleet_get_health",
    "odoofleet_list_operations",
}
PLATFORM_WRITES = {"odoofleet_control_instance", "odoofleet_update_instance"}
ODOO_READS = ("search_read", "read", "fields_get", "list_models")
ODOO_WRITES = ("create", "write", "unlink")


@pytest.fixture
async def base_url(app: Litestar) -> AsyncIterator[str]:
    async with http_served(app) as url:
        yield url


def odoo_tools(slug: str, *operations: str) -> set[str]:
    prefix = slug.replace("-", "_")
    return {f"{prefix}_{operation}" for operation in operations}


async def audited(alice: Caller, tool: str) -> list[dict[str, Any]]:
    """The audit entries of calls to `tool`, once the audit projection has them."""
    found: list[dict[str, Any]] = []

    async def recorded() -> bool:
        response = await alice.get("/api/audit-logs", params={"action": "mcp.tool_called"})
        assert response.status_code == 200, response.text
        found[:] = [e for e in response.json()["items"] if e["afterState"]["tool"] == tool]
        return bool(found)

    await eventually(recorded, timeout=30, message=f"an audit entry of {tool}")
    return found


async def test_a_session_lists_only_its_own_organizations_instances(
    base_url: str, alice: Caller, mallory: Caller, store: EventStore, settings: Settings
) -> None:
    ours = await running_instance(alice, store, await new_server(alice))
    theirs = await running_instance(mallory, store, await new_server(mallory))
    async with mcp_client(base_url, mint(settings, org="org-a", sub="alice")) as client:
        names = await tool_names(client)
        listed = structured(await client.call_tool("odoofleet_list_instances", {}))
        other = await client.call_tool("odoofleet_get_instance", {"instanceId": theirs["id"]})
    assert names >= PLATFORM_READS | PLATFORM_WRITES | odoo_tools(ours["slug"], *ODOO_READS)
    assert not any(theirs["slug"].replace("-", "_") in name for name in names)
    assert [i["id"] for i in listed["instances"]] == [ours["id"]]
    assert other.is_error
    assert "not found" in other.content[0].text  # type: ignore[union-attr]


async def test_write_tools_follow_mcp_write_enabled_and_the_open_session_is_told(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    heard = Heard()
    async with mcp_client(base_url, mint(settings), heard) as client:
        assert not odoo_tools(shop["slug"], *ODOO_WRITES) & await tool_names(client)
        patched = await alice.patch(f"/api/instances/{shop['id']}", json={"mcpWriteEnabled": True})
        assert patched.status_code == 200, patched.text
        # The session's next call hears that its tools changed, and the list has them.
        await client.call_tool("odoofleet_get_instance", {"instanceId": shop["id"]})
        assert heard.list_changed == 1
        assert odoo_tools(shop["slug"], *ODOO_WRITES) <= await tool_names(client)
        await alice.patch(f"/api/instances/{shop['id']}", json={"mcpWriteEnabled": False})
        await client.call_tool("odoofleet_list_instances", {})
        assert heard.list_changed == 2
        assert not odoo_tools(shop["slug"], *ODOO_WRITES) & await tool_names(client)


async def test_platform_write_tools_are_refused_as_tool_errors_while_writes_are_disabled(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    async with mcp_client(base_url, mint(settings)) as client:
        refused = await client.call_tool(
            "odoofleet_control_instance", {"instanceId": shop["id"], "action": "stop"}
        )
        await alice.patch(f"/api/instances/{shop['id']}", json={"mcpWriteEnabled": True})
        accepted = await client.call_tool(
            "odoofleet_control_instance", {"instanceId": shop["id"], "action": "stop"}
        )
    assert refused.is_error
    assert "mcpWriteEnabled" in refused.content[0].text  # type: ignore[union-attr]
    assert structured(accepted)["accepted"] is True
    stopping = await alice.get(f"/api/instances/{shop['id']}")
    assert stopping.json()["status"] == "stopping"


async def test_a_stopped_or_deleted_instance_loses_its_tools_at_the_next_call(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    heard = Heard()
    async with mcp_client(base_url, mint(settings), heard) as client:
        assert odoo_tools(shop["slug"], "search_read") <= await tool_names(client)
        deleted = await alice.delete(f"/api/instances/{shop['id']}")
        assert deleted.status_code == 202, deleted.text
        gone = await client.call_tool(
            f"{shop['slug'].replace('-', '_')}_search_read", {"model": "res.partner"}
        )
        assert heard.list_changed == 1
        assert gone.is_error
        assert not odoo_tools(shop["slug"], *ODOO_READS) & await tool_names(client)


async def test_a_read_only_key_sees_no_write_tools_and_its_write_is_refused_and_audited(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    await alice.patch(f"/api/instances/{shop['id']}", json={"mcpWriteEnabled": True})
    token = await issue_key(store, settings, permissions=("manage:instances",), mcp_read_only=True)
    tool = f"{shop['slug'].replace('-', '_')}_create"
    async with mcp_client(base_url, token) as client:
        names = await tool_names(client)
        refused = await client.call_tool(tool, {"model": "res.partner", "values": {"name": "X"}})
    assert not (PLATFORM_WRITES | odoo_tools(shop["slug"], *ODOO_WRITES)) & names
    assert refused.is_error
    assert "read-only" in refused.content[0].text  # type: ignore[union-attr]

    entries = await audited(alice, tool)
    assert entries[0]["resourceId"] == shop["id"]
    assert entries[0]["afterState"]["outcome"] == "refused"
    assert entries[0]["userId"].startswith("apikey:")


async def test_a_key_limited_to_some_instances_lists_only_those(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    server_id = await new_server(alice)
    first = await running_instance(alice, store, server_id)
    second = await running_instance(alice, store, server_id)
    token = await issue_key(
        store, settings, permissions=("view:instances", "view:audit"),
        mcp_instance_ids=[first["id"]],
    )  # fmt: skip
    async with mcp_client(base_url, token) as client:
        names = await tool_names(client)
        listed = structured(await client.call_tool("odoofleet_list_instances", {}))
    assert odoo_tools(first["slug"], *ODOO_READS) <= names
    assert not any(second["slug"].replace("-", "_") in name for name in names)
    # Org-wide history is not for a limited key; neither are writes for a viewer.
    assert "odoofleet_query_audit" not in names
    assert not PLATFORM_WRITES & names
    assert [i["id"] for i in listed["instances"]] == [first["id"]]


async def test_a_viewer_reads_but_cannot_write_and_an_anonymous_caller_is_refused(
    base_url: str, viewer: Caller, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    async with mcp_client(base_url, mint(settings, sub="victor", permissions=VIEW_ONLY)) as client:
        names = await tool_names(client)
        health = structured(
            await client.call_tool("odoofleet_get_health", {"instanceId": shop["id"]})
        )
        operations = structured(
            await client.call_tool("odoofleet_list_operations", {"instanceId": shop["id"]})
        )
        audit: dict[str, Any] = {}

        async def audited_creation() -> bool:
            # The audit projection catches up on its own time (the viewer wrote nothing).
            found = await client.call_tool("odoofleet_query_audit", {"perPage": 5})
            audit.update(structured(found))
            return bool(audit["total"])

        await eventually(audited_creation, timeout=30, message="the audit trail")
    assert not PLATFORM_WRITES & names
    assert health["health"]["status"] == "unknown"
    assert "score" in health
    assert operations["operations"] == []  # no saga ran: the test recorded the outcome
    assert audit["total"] >= 1
    anonymous = await viewer.post("/api/mcp", headers={"Authorization": ""}, json={})
    assert anonymous.status_code == 401


async def test_tool_calls_are_audited_with_secrets_masked(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    tool = f"{shop['slug'].replace('-', '_')}_create"
    async with mcp_client(base_url, mint(settings)) as client:
        # Refused (MCP write access is off), and recorded all the same.
        refused = await client.call_tool(
            tool, {"model": "res.partner", "values": {"name": "X", "password": "s3cret"}}
        )
    assert refused.is_error

    entry = (await audited(alice, tool))[0]
    assert entry["afterState"]["arguments"]["values"]["password"] == "********"
    assert "s3cret" not in str(entry)
    assert entry["resourceType"] == "instance"
    assert entry["resourceName"] == shop["slug"]


async def test_tool_calls_are_rate_limited_per_key(
    base_url: str, app: Litestar, alice: Caller, store: EventStore, settings: Settings
) -> None:
    limited = app.state.mcp_runtime.limits
    for _ in range(settings.mcp_calls_per_minute):
        limited.take("alice", "MCP tool calls")
    async with mcp_client(base_url, mint(settings)) as client:
        refused = await client.call_tool("odoofleet_list_instances", {})
    assert refused.is_error
    assert "rate limited" in refused.content[0].text  # type: ignore[union-attr]


async def test_odoofleet_mcp_bridges_stdio_to_the_api_with_the_callers_rights(
    base_url: str, alice: Caller, store: EventStore, settings: Settings
) -> None:
    shop = await running_instance(alice, store, await new_server(alice))
    token = mint(settings, sub="victor", permissions=VIEW_ONLY)
    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "odoofleet", "mcp", "--api", base_url, "--token", token],
        env=dict(os.environ),
    )
    async with Client(command, mode="legacy", cache=None) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        got = structured(
            await client.call_tool("odoofleet_get_instance", {"instanceId": shop["id"]})
        )
    assert odoo_tools(shop["slug"], *ODOO_READS) <= names
    assert not PLATFORM_WRITES & names
    assert got["id"] == shop["id"]


async def test_an_idle_session_is_closed_and_its_id_answers_404(
    settings: Settings, pool: Pool, projections: None
) -> None:
    quick = msgspec.structs.replace(settings, mcp_session_idle_timeout=0.3)
    app = create_app(quick.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    headers = {
        "Authorization": f"Bearer {mint(settings)}",
        "Accept": "application/json, text/event-stream",
    }
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    async with serving(app), http_served(app) as base_url, httpx.AsyncClient() as http:
        opened = await http.post(f"{base_url}/api/mcp", json=hello, headers=headers)
        assert opened.status_code == 200, opened.text
        session = {"Mcp-Session-Id": opened.headers["mcp-session-id"]}
        session["MCP-Protocol-Version"] = "2025-11-25"
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}

        async def closed() -> bool:
            # Polled more slowly than the timeout: a request would otherwise keep it alive.
            answer = await http.post(f"{base_url}/api/mcp", json=ping, headers=headers | session)
            return answer.status_code == 404

        await eventually(closed, timeout=10, interval=1.0, message="the idle session closed")
