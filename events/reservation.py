"""Reservation streams: a slug per organization and the host ports of a server.

Appending with "no stream"/an exact expected version makes these streams uniqueness guards:
two concurrent creates cannot both reserve one slug or one port.
"""

from __future__ import annotations

from events.registry import DomainEvent


class SlugReserved(DomainEvent, frozen=True, kw_only=True):
    slug: str
    instance_id: str


class SlugReleased(DomainEvent, frozen=True, kw_only=True):
    slug: str
    instance_id: str


class PortsReserved(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    http_port_host: int
    longpolling_port_host: int


class PortsReleased(DomainEvent, frozen=True, kw_only=True):
    instance_id: str


RESERVATION_EVENTS: tuple[type[DomainEvent], ...] = (
    SlugReserved,
    SlugReleased,
    PortsReserved,
    PortsReleased,
)


def slug_stream(org_id: str, slug: str) -> str:
    return f"slug-{org_id}-{slug}"


def ports_stream(server_id: str) -> str:
    return f"ports-{server_id}"
