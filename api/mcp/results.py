"""Tool results sized for a prompt: long texts cut, record lists trimmed to a byte budget."""

from __future__ import annotations

from typing import Any, Final

import mcp_types as types
import msgspec

MAX_TEXT_CHARS: Final = 2000
_encoder: Final = msgspec.json.Encoder()


def shortened(value: Any, limit: int = MAX_TEXT_CHARS) -> Any:
    """Texts longer than `limit` (binary fields come as base64) cut with a marker."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"…[{len(value) - limit} more characters]"
    if isinstance(value, dict):
        return {k: shortened(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [shortened(v, limit) for v in value]
    return value


def size(value: Any) -> int:
    return len(_encoder.encode(value))


def fitted(records: list[Any], budget: int) -> tuple[list[Any], bool]:
    """The longest head of `records` whose JSON fits `budget` bytes, and whether any was cut."""
    kept: list[Any] = []
    used = 2
    for record in records:
        used += size(record) + 1
        if used > budget:
            return kept, True
        kept.append(record)
    return kept, False


def success(value: dict[str, Any]) -> types.CallToolResult:
    text = _encoder.encode(value).decode()
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=value
    )


def refusal(message: str) -> types.CallToolResult:
    """A tool error (isError), which the model reads and can act on — not a protocol error."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )
