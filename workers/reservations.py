"""The reservation streams from the sagas' side: the host ports held on a server (the proxy
publishes them all) and, at teardown, giving an instance's slug and ports back."""

from __future__ import annotations

from collections.abc import Iterable

from events.metadata import EventMetadata
from events.registry import DomainEvent, EventRegistry
from events.reservation import (
    PortsReleased,
    PortsReserved,
    SlugReleased,
    SlugReserved,
    ports_stream,
    slug_stream,
)
from events.store import EventStore
from workers.streams import append_once, read


def held_ports(events: Iterable[DomainEvent]) -> dict[str, tuple[int, int]]:
    held: dict[str, tuple[int, int]] = {}
    for event in events:
        match event:
            case PortsReserved(instance_id=instance_id):
                held[instance_id] = (event.http_port_host, event.longpolling_port_host)
            case PortsReleased(instance_id=instance_id):
                held.pop(instance_id, None)
    return held


def slug_holder(events: Iterable[DomainEvent]) -> str | None:
    holder: str | None = None
    for event in events:
        match event:
            case SlugReserved(instance_id=instance_id):
                holder = instance_id
            case SlugReleased():
                holder = None
    return holder


async def server_host_ports(
    store: EventStore, registry: EventRegistry, server_id: str
) -> list[int]:
    stream = await read(store, registry, ports_stream(server_id))
    return sorted(port for pair in held_ports(stream.events).values() for port in pair)


async def release_reservations(
    store: EventStore,
    registry: EventRegistry,
    metadata: EventMetadata,
    *,
    key: str,
    server_id: str,
    slug: str,
    instance_id: str,
) -> str:
    """Give the ports and the slug back; each append names the version it checked and is
    retried on a conflict, and is skipped when the instance no longer holds the reservation."""
    ports = await append_once(
        store,
        registry,
        ports_stream(server_id),
        [PortsReleased(instance_id=instance_id)],
        metadata,
        key=f"{key}/ports",
        allowed=lambda events: instance_id in held_ports(events),
    )
    name = await append_once(
        store,
        registry,
        slug_stream(metadata.org_id, slug),
        [SlugReleased(slug=slug, instance_id=instance_id)],
        metadata,
        key=f"{key}/slug",
        allowed=lambda events: slug_holder(events) == instance_id,
    )
    released = [what for what, done in (("host ports", ports), (f"slug {slug}", name)) if done]
    return f"released: {', '.join(released)}" if released else "nothing was reserved any more"
