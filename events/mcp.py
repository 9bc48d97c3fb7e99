"""Events of an MCP session stream (`mcp-<session uuid>`): the tool calls an AI assistant made."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from events.registry import DomainEvent

ToolOutcome = Literal["succeeded", "refused", "failed"]


class McpToolCalled(DomainEvent, frozen=True, kw_only=True):
    """One tool call through /api/mcp (or `odoofleet mcp`). `arguments` are masked: a value
    under a secret-looking key never reaches the log (commands/mcp.py)."""

    session_id: str
    tool: str
    instance_id: str | None
    instance_slug: str | None
    arguments: dict[str, Any]
    outcome: ToolOutcome
    message: str | None
    called_at: datetime


MCP_EVENTS: tuple[type[DomainEvent], ...] = (McpToolCalled,)


def mcp_stream(session_id: str) -> str:
    return f"mcp-{session_id}"
