"""Every event type odoofleet writes, in one registry."""

from __future__ import annotations

from events.api_key import API_KEY_EVENTS
from events.backup import BACKUP_EVENTS
from events.domain import DOMAIN_EVENTS
from events.health import HEALTH_EVENTS
from events.instance import INSTANCE_EVENTS, INSTANCE_UPCASTERS
from events.mcp import MCP_EVENTS
from events.operation import OPERATION_EVENTS
from events.registry import EventRegistry
from events.reservation import RESERVATION_EVENTS
from events.server import SERVER_EVENTS, SERVER_UPCASTERS
from events.webhook import WEBHOOK_EVENTS


def build_registry() -> EventRegistry:
    registry = EventRegistry(
        (
            *INSTANCE_EVENTS,
            *SERVER_EVENTS,
            *OPERATION_EVENTS,
            *RESERVATION_EVENTS,
            *HEALTH_EVENTS,
            *API_KEY_EVENTS,
            *WEBHOOK_EVENTS,
            *DOMAIN_EVENTS,
            *BACKUP_EVENTS,
            *MCP_EVENTS,
        )
    )
    for (event_type, from_version), upcast in {**INSTANCE_UPCASTERS, **SERVER_UPCASTERS}.items():
        registry.upcaster(event_type, from_version)(upcast)
    return registry


def stream_type(stream_id: str) -> str:
    """`instance-<uuid>` → `instance`: the stream's kind, used in NATS subjects."""
    return stream_id.split("-", 1)[0]
