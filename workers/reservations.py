"""The reservation streams from the sagas' side: at teardown, giving an instance's slug,
host name and host ports back."""

from __future__ import annotations

from collections.abc import Iterable

from commands.reservation import slug_history
from events.metadata import EventMetadata
from events.registry import DomainEvent, EventRegistry
from events.reservation import (
    PortsReleased,
    PortsReserved,
    SlugReleased,
    SlugReserved,
    SubdomainReleased,
    SubdomainReserved,
    legacy_slug_stream,
    ports_stream,
    slug_stream,
    subdomain_stream,
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


def holder(events: Iterable[DomainEvent]) -> str | None:
    """The instance a slug or host name reservation stream is held by, if any."""
    held_by: str | None = None
    for event in events:
        match event:
            case SlugReserved(instance_id=instance_id) | SubdomainReserved(instance_id=instance_id):
                held_by = instance_id
            case SlugReleased() | SubdomainReleased():
                held_by = None
    return held_by


async def release_reservations(
    store: EventStore,
    registry: EventRegistry,
    metadata: EventMetadata,
    *,
    key: str,
    server_id: str,
    slug: str,
    subdomain: str,
    instance_id: str,
) -> str:
    """Give the ports, the slug and the host name back; each append names the version it
    checked and is retried on a conflict, and is skipped when the instance no longer holds
    the reservation.

    A slug reserved under its legacy stream id is released on its new stream (nothing is
    appended to a legacy stream); an instance created before host names were reserved has
    no host name reservation, and releasing its slug frees its host name
    (events.legacy_reservations)."""
    ports = await append_once(
        store,
        registry,
        ports_stream(server_id),
        [PortsReleased(instance_id=instance_id)],
        metadata,
        key=f"{key}/ports",
        allowed=lambda events: instance_id in held_ports(events),
    )
    legacy = await read(store, registry, legacy_slug_stream(metadata.org_id, slug))
    name = await append_once(
        store,
        registry,
        slug_stream(metadata.org_id, slug),
        [SlugReleased(slug=slug, instance_id=instance_id)],
        metadata,
        key=f"{key}/slug",
        allowed=lambda events: holder(slug_history(slug, legacy.events, events)) == instance_id,
    )
    host = await append_once(
        store,
        registry,
        subdomain_stream(subdomain),
        [SubdomainReleased(subdomain=subdomain, instance_id=instance_id)],
        metadata,
        key=f"{key}/subdomain",
        allowed=lambda events: holder(events) == instance_id,
    )
    done = (("host ports", ports), (f"slug {slug}", name), (f"subdomain {subdomain}", host))
    released = [what for what, finished in done if finished]
    return f"released: {', '.join(released)}" if released else "nothing was reserved any more"
