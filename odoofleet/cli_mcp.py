"""`odoofleet mcp --api URL --token …`: MCP over stdio for desktop assistants, bridged to the
API's /api/mcp (Streamable HTTP) with the official SDK on both sides. The API does the work:
the bridge adds nothing and decides nothing, so auth, RBAC, audit and rate limits hold."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import AsyncExitStack
from typing import Any

import anyio
import mcp_types as types
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client

from odoofleet.settings import Settings


def register(commands: Any) -> None:
    cmd = commands.add_parser(
        "mcp", help="serve MCP on stdin/stdout for a desktop assistant, through the API"
    )
    cmd.add_argument("--api", required=True, help="the API's base URL, e.g. http://127.0.0.1:8000")
    cmd.add_argument(
        "--token",
        default=os.environ.get("ODOOFLEET_API_TOKEN"),
        help="a bearer JWT or API key (default: ODOOFLEET_API_TOKEN)",
    )
    cmd.set_defaults(run=run_mcp)


def run_mcp(_settings: Settings, args: argparse.Namespace) -> int:
    if not args.token:
        print("odoofleet mcp: give --token or set ODOOFLEET_API_TOKEN", file=sys.stderr)
        return 2
    anyio.run(bridge, args.api.rstrip("/"), args.token)
    return 0


class _Relay:
    """Passes the API's tools/list_changed on to the desktop client."""

    def __init__(self) -> None:
        self.changed = anyio.Event()

    async def __call__(self, message: IncomingMessage) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.changed.set()


async def bridge(api: str, token: str) -> None:
    relay = _Relay()
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        )
        upstream = await stack.enter_async_context(
            Client(
                streamable_http_client(f"{api}/api/mcp", http_client=http),
                mode="legacy",
                cache=None,
                message_handler=relay,
            )
        )

        async def list_tools(
            _ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return await upstream.list_tools(cursor=params.cursor if params else None)

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            result = await upstream.call_tool(params.name, params.arguments or {})
            if relay.changed.is_set():
                relay.changed = anyio.Event()
                await ctx.session.send_notification(
                    types.ToolListChangedNotification(), related_request_id=ctx.request_id
                )
            assert isinstance(result, types.CallToolResult)
            return result

        server: Server[Any] = Server(
            "odoofleet", version="1", on_list_tools=list_tools, on_call_tool=call_tool
        )
        options = server.create_initialization_options(NotificationOptions(tools_changed=True))
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, options)
