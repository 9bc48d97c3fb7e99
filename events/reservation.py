"""Reservation streams: a slug per organization, a subdomain per installation and the host
ports of a server.

Appending with "no stream"/an exact expected version makes these streams uniqueness guards:
two concurrent creates cannot both reserve one slug, one subdomain or one port.
"""

from __future__ import annotations

import hashlib

import msgspec

from events.registry import DomainEvent


class SlugReserved(DomainEvent, frozen=True, kw_only=True):
    slug: str
    instance_id: str


class SlugReleased(DomainEvent, frozen=True, kw_only=True):
    slug: str
    instance_id: str


class SubdomainReserved(DomainEvent, frozen=True, kw_only=True):
    """`subdomain` is the whole host name (`<label>.<base domain>`)."""

    subdomain: str
    instance_id: str


class SubdomainReleased(DomainEvent, frozen=True, kw_only=True):
    subdomain: str
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
    SubdomainReserved,
    SubdomainReleased,
    PortsReserved,
    PortsReleased,
)


def slug_stream(org_id: str, slug: str) -> str:
    """`slug-<sha256 of [org, slug] as JSON>`: one stream per (organization, slug) pair.

    The JSON array keeps the two parts apart whatever they contain, so `acme-corp`/`shop` and
    `acme`/`corp-shop` get different streams. The hex digest has no hyphen, so no id of this
    form is ever a `legacy_slug_stream` id (those always have one after `slug-`).
    """
    pair = msgspec.json.encode([org_id, slug])
    return f"slug-{hashlib.sha256(pair).hexdigest()}"


def legacy_slug_stream(org_id: str, slug: str) -> str:
    """The id odoofleet wrote slug reservations under before `slug_stream`: ambiguous
    (`slug-acme-corp-shop` is `acme-corp`/`shop` and `acme`/`corp-shop`), so it is only read,
    for the reservations made under it, and its events count for the pair only when their
    `slug` is the pair's (with the id and the slug known, the organization is too)."""
    return f"slug-{org_id}-{slug}"


def subdomain_stream(subdomain: str) -> str:
    """One stream per host name, across organizations (a host name is one DNS name: no part
    of it can be mistaken for another)."""
    return f"subdomain-{subdomain}"


def ports_stream(server_id: str) -> str:
    """Server ids are UUIDs chosen by odoofleet (api/drafts.py), so this id is unambiguous."""
    return f"ports-{server_id}"
