"""Every event type odoofleet writes, in one registry."""

from __future__ import annotations

from events.health import HEALTH_EVENTS
from events.instance import INSTANCE_EVENTS
from events.operation import OPERATION_EVENTS
from events.registry import EventRegistry
from events.reservation import RESERVATION_EVENTS
from events.server import SERVER_EVENTS


def build_registry() -> EventRegistry:
    return EventRegistry(
        (
            *INSTANCE_EVENTS,
            *SERVER_EVENTS,
            *OPERATION_EVENTS,
            *RESERVATION_EVENTS,
            *HEALTH_EVENTS,
        )
    )


def stream_type(stream_id: str) -> str:
    """`instance-<uuid>` → `instance`: the stream's kind, used in NATS subjects."""
    return stream_id.split("-", 1)[0]
