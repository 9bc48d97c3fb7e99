"""Recording an MCP tool call in the audit trail: a pure decision, appended by the runner."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec

from commands.runner import Outcome, execute_command, folder
from events.mcp import McpToolCalled, ToolOutcome, mcp_stream
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.secrets import MASK
from events.store import EventStore

# A key that names a secret has its value masked at any depth (API.md: secrets are masked).
_SECRET_KEY: Final = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)
_MAX_DEPTH: Final = 6
_MAX_TEXT: Final = 500


class RecordToolCall(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    tool: str
    instance_id: str | None
    instance_slug: str | None
    arguments: dict[str, Any]
    outcome: ToolOutcome
    message: str | None


def masked(value: Any, depth: int = 0) -> Any:
    """The arguments as the audit trail keeps them: secrets masked, long texts cut, deep
    nesting elided (an assistant's arguments are the caller's to write)."""
    if depth >= _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {
            str(k)[:100]: MASK if _SECRET_KEY.search(str(k)) else masked(v, depth + 1)
            for k, v in list(value.items())[:50]
        }
    if isinstance(value, list):
        return [masked(v, depth + 1) for v in value[:50]]
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[: _MAX_TEXT - 1] + "…"
    return value


def decide(command: RecordToolCall, _calls: int, now: datetime) -> Sequence[DomainEvent]:
    """Every call is recorded: a session's stream only grows."""
    message = None if command.message is None else command.message[:_MAX_TEXT]
    return [
        McpToolCalled(
            session_id=command.session_id,
            tool=command.tool,
            instance_id=command.instance_id,
            instance_slug=command.instance_slug,
            arguments=masked(command.arguments),
            outcome=command.outcome,
            message=message,
            called_at=now,
        )
    ]


_fold = folder(0, lambda calls, _event: calls + 1)


async def record_tool_call(
    store: EventStore, command: RecordToolCall, *, now: datetime, metadata: EventMetadata
) -> Outcome:
    return await execute_command(
        store, mcp_stream(command.session_id), _fold, decide, command, now, metadata
    )
