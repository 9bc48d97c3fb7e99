"""The MCP SDK's own client on the app served over real HTTP (api_fixtures.http_served: it
speaks Streamable HTTP with httpx2 and cannot use an in-process transport), and its keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import mcp_types as types
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from api.api_keys import KeyHasher
from events.api_key import ApiKeyCreated, api_key_stream
from events.metadata import Actor, EventMetadata
from events.store import NO_STREAM, EventStore
from odoofleet.settings import Settings


class Heard:
    """Notifications a client received (tools/list_changed among them)."""

    def __init__(self) -> None:
        self.notifications: list[str] = []

    async def __call__(self, message: IncomingMessage) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            self.notifications.append(method)

    @property
    def list_changed(self) -> int:
        return self.notifications.count("notifications/tools/list_changed")


@asynccontextmanager
async def mcp_client(
    base_url: str, token: str, heard: Heard | None = None
) -> AsyncIterator[Client]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        )
        transport = streamable_http_client(f"{base_url}/api/mcp", http_client=http)
        client = Client(transport, mode="legacy", cache=None, message_handler=heard)
        yield await stack.enter_async_context(client)


async def tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def issue_key(
    store: EventStore,
    settings: Settings,
    *,
    org: str = "org-a",
    permissions: tuple[str, ...],
    mcp_read_only: bool = False,
    mcp_instance_ids: list[str] | None = None,
) -> str:
    """An API key as POST /api/api-keys records it, with its MCP controls."""
    key_id = str(uuid.uuid4())
    issued = KeyHasher(settings.secret_key).issue(key_id)
    created = ApiKeyCreated(
        key_id=key_id,
        name="assistant",
        secret_hash=issued.secret_hash,
        permissions=list(permissions),
        instance_ids=None,
        expires_at=None,
        created_by="alice",
        created_at=datetime.now(UTC),
        mcp_read_only=mcp_read_only,
        mcp_instance_ids=mcp_instance_ids,
    )
    metadata = EventMetadata(actor=Actor("alice", "Alice"), org_id=org, correlation_id="t")
    await store.append(api_key_stream(key_id), NO_STREAM, [created], metadata)
    return issued.token


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content
