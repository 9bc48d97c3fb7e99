"""A custom domain's name: its one normal form (IDNA, lowercase) and its reservation across
the installation (`domainname-<name>`, shared by every organization, like a host name)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Final

import idna
import msgspec

from commands.refusals import Refusal
from events.domain import DomainNameReleased, DomainNameReserved
from events.registry import DomainEvent

NAME_MAX: Final = 253  # RFC 1035 §2.3.4, without the root's dot
LABEL_MAX: Final = 63
_LABEL: Final = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class InvalidDomainName(ValueError):
    """Why a name is no domain odoofleet can serve (the API's 400 names the field)."""


class DomainTaken(Refusal):
    """Another domain holds the name, in this organization or another: the answer says no
    more than that, so nobody learns who holds it."""

    def __init__(self) -> None:
        super().__init__("this domain is already in use")


class DomainNameState(msgspec.Struct, frozen=True):
    holder: str | None = None  # the domain id


class ReserveDomainName(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    domain_id: str


class ReleaseDomainName(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    domain_id: str


def normalize_domain(raw: str, *, wildcard_allowed: bool = False) -> str:
    """`raw` as the ASCII (punycode) lowercase name without a final dot, or InvalidDomainName.

    Wildcards need DNS-01, which odoofleet does not do (HTTP-01 cannot prove `*.x`), so
    `wildcard_allowed` stays False; IP literals are no domain (no certificate is issued for
    them by HTTP-01 CAs, and DNS cannot point them)."""
    name = raw.strip().rstrip(".")
    if not name:
        raise InvalidDomainName("a domain name is required")
    if len(raw) > 4 * NAME_MAX:
        raise InvalidDomainName(f"longer than {NAME_MAX} characters")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise InvalidDomainName("an IP address is not a domain name")
    wildcard = name.startswith("*.")
    if wildcard and not wildcard_allowed:
        raise InvalidDomainName("wildcard domains need DNS-01 validation, which is not configured")
    body = name[2:] if wildcard else name
    try:
        ascii_name = idna.encode(body, uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise InvalidDomainName(f"not a valid internationalized domain name: {e}") from e
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidDomainName("a domain name needs at least two labels (example.com)")
    for label in labels:
        if len(label) > LABEL_MAX or not _LABEL.match(label):
            raise InvalidDomainName(f"label {label!r} is not a valid host name label")
    if labels[-1].isdigit():
        raise InvalidDomainName("the top-level label cannot be numeric")
    normal = ("*." if wildcard else "") + ascii_name
    if len(normal) > NAME_MAX:
        raise InvalidDomainName(f"longer than {NAME_MAX} characters")
    return normal


def check_outside_base(name: str, base_domain: str) -> None:
    """Names at or under the installation's base domain are the instances' own subdomains
    (`<slug>.<base domain>`, reserved when an instance is created): a custom domain there
    could take another organization's host name, now or later."""
    base = base_domain.strip().rstrip(".").lower()
    if base and (name == base or name.endswith("." + base)):
        raise InvalidDomainName(f"names under {base} are the instances' own subdomains")


def fold_domain_name(events: Iterable[DomainEvent]) -> DomainNameState:
    state = DomainNameState()
    for event in events:
        match event:
            case DomainNameReserved(domain_id=domain_id):
                state = DomainNameState(domain_id)
            case DomainNameReleased():
                state = DomainNameState(None)
    return state


def decide_reserve(command: ReserveDomainName, state: DomainNameState) -> list[DomainEvent]:
    if state.holder == command.domain_id:
        return []
    if state.holder is not None:
        raise DomainTaken()
    return [DomainNameReserved(domain=command.domain, domain_id=command.domain_id)]


def decide_release(command: ReleaseDomainName, state: DomainNameState) -> list[DomainEvent]:
    """Nothing when the name is no longer this domain's (released already)."""
    if state.holder != command.domain_id:
        return []
    return [DomainNameReleased(domain=command.domain, domain_id=command.domain_id)]
