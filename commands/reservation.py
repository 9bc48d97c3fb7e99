"""Deciders of the reservation streams: a slug per organization, the host ports of a server."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from commands.refusals import NoFreePorts, SlugTaken
from events.registry import DomainEvent
from events.reservation import PortsReleased, PortsReserved, SlugReleased, SlugReserved


class SlugState(msgspec.Struct, frozen=True):
    """Who holds the slug; None when it was never reserved or has been released."""

    holder: str | None = None


class ReserveSlug(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    instance_id: str


def fold_slug(events: Iterable[DomainEvent]) -> SlugState:
    state = SlugState()
    for event in events:
        match event:
            case SlugReserved(instance_id=instance_id):
                state = SlugState(instance_id)
            case SlugReleased():
                state = SlugState(None)
    return state


def decide_slug(command: ReserveSlug, state: SlugState) -> list[DomainEvent]:
    if state.holder is not None:
        raise SlugTaken(command.slug)
    return [SlugReserved(slug=command.slug, instance_id=command.instance_id)]


class PortsState(msgspec.Struct, frozen=True):
    """The host ports held on one server, by instance."""

    held: dict[str, tuple[int, int]] = {}

    def in_use(self) -> set[int]:
        return {port for pair in self.held.values() for port in pair}


class ReservePorts(msgspec.Struct, frozen=True, kw_only=True):
    server_id: str
    instance_id: str
    first: int
    last: int


def fold_ports(events: Iterable[DomainEvent], start: PortsState | None = None) -> PortsState:
    """One pass over the server's reservation history, from `start` (the state up to where
    `events` begin) or from nothing (a fold that copied the map at every event would be
    quadratic in it)."""
    held: dict[str, tuple[int, int]] = dict(start.held) if start is not None else {}
    for event in events:
        match event:
            case PortsReserved(instance_id=instance_id):
                held[instance_id] = (event.http_port_host, event.longpolling_port_host)
            case PortsReleased(instance_id=instance_id):
                held.pop(instance_id, None)
    return PortsState(held)


def decide_ports(command: ReservePorts, state: PortsState) -> list[PortsReserved]:
    """Reserve the two lowest free ports of the range (HTTP, then longpolling)."""
    in_use = state.in_use()
    free = (port for port in range(command.first, command.last + 1) if port not in in_use)
    pair = [port for port, _ in zip(free, range(2), strict=False)]
    if len(pair) < 2:
        raise NoFreePorts(command.server_id)
    return [
        PortsReserved(
            instance_id=command.instance_id, http_port_host=pair[0], longpolling_port_host=pair[1]
        )
    ]
