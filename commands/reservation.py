"""Deciders of the reservation streams: a slug per organization, a subdomain per
installation, the host ports of a server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import msgspec

from commands.refusals import ConcurrentModification, NoFreePorts, Refusal, SlugTaken
from events.registry import DomainEvent
from events.reservation import (
    PortsReleased,
    PortsReserved,
    SlugReleased,
    SlugReserved,
    SubdomainReleased,
    SubdomainReserved,
)


class SlugState(msgspec.Struct, frozen=True):
    """Who holds the slug; None when it was never reserved or has been released."""

    holder: str | None = None


class ReserveSlug(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    instance_id: str


class ReleaseReservations(msgspec.Struct, frozen=True, kw_only=True):
    """Give a removed instance's slug, host name and host ports back: one command, decided
    on each of the three streams by its own decider below."""

    instance_id: str
    slug: str
    subdomain: str
    server_id: str


def fold_slug(events: Iterable[DomainEvent]) -> SlugState:
    state = SlugState()
    for event in events:
        match event:
            case SlugReserved(instance_id=instance_id):
                state = SlugState(instance_id)
            case SlugReleased():
                state = SlugState(None)
    return state


def slug_history(
    slug: str, legacy: Iterable[DomainEvent], current: Iterable[DomainEvent]
) -> list[DomainEvent]:
    """What reserved and released `slug` for its organization: the events of its legacy
    stream about this slug (that stream may also hold another pair's, see
    events.reservation.legacy_slug_stream), then those of its own stream, where releases of
    legacy reservations go too. Nothing is appended to a legacy stream any more, so its
    events all come first."""
    about_slug = [
        event
        for event in legacy
        if isinstance(event, SlugReserved | SlugReleased) and event.slug == slug
    ]
    return [*about_slug, *current]


def decide_slug(command: ReserveSlug, state: SlugState) -> list[DomainEvent]:
    if state.holder is not None:
        raise SlugTaken(command.slug)
    return [SlugReserved(slug=command.slug, instance_id=command.instance_id)]


def decide_slug_release(command: ReleaseReservations, state: SlugState) -> list[DomainEvent]:
    """Nothing when the slug is no longer the instance's (released already, maybe taken by
    another instance since): a redelivered release is done, not an error."""
    if state.holder != command.instance_id:
        return []
    return [SlugReleased(slug=command.slug, instance_id=command.instance_id)]


class SubdomainState(msgspec.Struct, frozen=True):
    """Who holds a host name: an instance that reserved it, or (`by_legacy`) one created
    before host names were reserved, which holds `<its slug>.<base domain>`."""

    holder: str | None = None
    by_legacy: bool = False

    @property
    def free(self) -> bool:
        return self.holder is None and not self.by_legacy


class SubdomainsTaken(ConcurrentModification):
    """Every host name tried for the instance is held. Only a race can get here (the last
    candidate comes from the new instance's random id), and a retry draws a new id; the
    answer names no host name, so it tells nothing of other organizations."""

    def __init__(self) -> None:
        Refusal.__init__(self, "no free subdomain was left for this instance; retry the request")
        self.stream_id = "subdomain"


class ReserveSubdomain(msgspec.Struct, frozen=True, kw_only=True):
    candidates: list[str]
    instance_id: str


def subdomain_labels(slug: str, org_id: str, instance_id: str) -> list[str]:
    """First labels of an instance's host name (`<label>.<base domain>`), in order of
    preference. Slugs are unique per organization but host names across the installation,
    so a second organization with the slug gets `<slug>-<8 hex of its id's SHA-256>`; if
    another organization's slug took that name already, `<slug>-<12 hex of the instance's
    random id>`, which nobody could know before. A slug has at most 50 characters
    (commands.defaults.SLUG_MAX), so every label fits DNS's 63."""
    org_hash = hashlib.sha256(org_id.encode()).hexdigest()[:8]
    instance_hex = instance_id.replace("-", "")[:12]
    return [slug, f"{slug}-{org_hash}", f"{slug}-{instance_hex}"]


def fold_subdomain(events: Iterable[DomainEvent], *, by_legacy: bool = False) -> SubdomainState:
    holder: str | None = None
    for event in events:
        match event:
            case SubdomainReserved(instance_id=instance_id):
                holder = instance_id
            case SubdomainReleased():
                holder = None
    return SubdomainState(holder, by_legacy)


def decide_subdomain(
    command: ReserveSubdomain, states: Mapping[str, SubdomainState]
) -> list[SubdomainReserved]:
    """The first candidate nobody holds (`states` by host name; a missing one is free)."""
    for subdomain in command.candidates:
        if states.get(subdomain, SubdomainState()).free:
            return [SubdomainReserved(subdomain=subdomain, instance_id=command.instance_id)]
    raise SubdomainsTaken()


def decide_subdomain_release(
    command: ReleaseReservations, state: SubdomainState
) -> list[DomainEvent]:
    """Nothing when the host name is not the instance's: released already, or never reserved
    (an instance created before host names were, whose slug's release frees it;
    events.legacy_reservations)."""
    if state.holder != command.instance_id:
        return []
    return [SubdomainReleased(subdomain=command.subdomain, instance_id=command.instance_id)]


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


def decide_ports_release(command: ReleaseReservations, state: PortsState) -> list[DomainEvent]:
    if command.instance_id not in state.held:
        return []
    return [PortsReleased(instance_id=command.instance_id)]
