"""Events of a custom domain (`domain-<uuid>`, one stream per domain an instance answers to)
and of the installation-wide reservation of its name (`domainname-<name>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from events.registry import DomainEvent
from events.secrets import Sealed


class DomainNameReserved(DomainEvent, frozen=True, kw_only=True):
    """`domain` held by `domain_id` across every organization (a DNS name has one owner)."""

    domain: str
    domain_id: str


class DomainNameReleased(DomainEvent, frozen=True, kw_only=True):
    domain: str
    domain_id: str


class DomainAdded(DomainEvent, frozen=True, kw_only=True):
    domain_id: str
    instance_id: str
    domain: str  # lowercase, IDNA (punycode) form
    added_at: datetime
    # The instance's own `<slug>.<base domain>` (commands/domain_auto.py): never removed by
    # the API, its name held by the instance's subdomain reservation, not `domainname-`.
    auto_generated: bool = False


class DomainVerificationRequested(DomainEvent, frozen=True, kw_only=True):
    """Check the domain's DNS now (on add, on `POST …/verify`, or a retry of the backoff)."""

    domain_id: str
    instance_id: str
    request_id: str
    attempt: int = 1
    first_requested_at: datetime


class DomainVerified(DomainEvent, frozen=True, kw_only=True):
    domain_id: str
    instance_id: str
    request_id: str
    addresses: list[str]  # what the resolver answered, all of them the server's
    verified_at: datetime


class DomainVerificationFailed(DomainEvent, frozen=True, kw_only=True):
    """`message` carries the resolver's answer; `retry_at` None: the 24 h of retries are over."""

    domain_id: str
    instance_id: str
    request_id: str
    message: str
    retry_at: datetime | None
    attempt: int  # of the series of checks begun at first_requested_at
    first_requested_at: datetime


class PrimaryDomainChanged(DomainEvent, frozen=True, kw_only=True):
    """The instance's primary domain is now `domain_id` (every other domain of it is not)."""

    domain_id: str
    instance_id: str


class CertificateRequested(DomainEvent, frozen=True, kw_only=True):
    """Order a certificate (first issue after verification, or a renewal)."""

    domain_id: str
    instance_id: str
    request_id: str
    renewal: bool


class CertificateIssued(DomainEvent, frozen=True, kw_only=True):
    """The certificate chain and its private key, both PEM and sealed by the Vault; they are
    installed on the server's proxy (0600) before this is recorded."""

    domain_id: str
    instance_id: str
    request_id: str
    certificate: Sealed
    private_key: Sealed
    expires_at: datetime
    issued_at: datetime


class CertificateRenewed(CertificateIssued, frozen=True, kw_only=True):
    """A later certificate for the same domain, installed in place of the previous one."""


class CertificateFailed(DomainEvent, frozen=True, kw_only=True):
    """`rate_limited`: the CA said too many (rateLimited): the next attempt waits `retry_at`."""

    domain_id: str
    instance_id: str
    request_id: str
    reason: str
    rate_limited: bool
    retry_at: datetime | None
    failed_at: datetime


class DomainRemoved(DomainEvent, frozen=True, kw_only=True):
    """The domain is gone from the API at once; the cleanup saga removes its route and
    certificate from the server."""

    domain_id: str
    instance_id: str
    domain: str
    removed_at: datetime


DOMAIN_EVENTS: tuple[type[DomainEvent], ...] = (
    DomainNameReserved,
    DomainNameReleased,
    DomainAdded,
    DomainVerificationRequested,
    DomainVerified,
    DomainVerificationFailed,
    PrimaryDomainChanged,
    CertificateRequested,
    CertificateIssued,
    CertificateRenewed,
    CertificateFailed,
    DomainRemoved,
)
VERIFICATION_WINDOW_HOURS: Final = 24


def domain_stream(domain_id: str) -> str:
    return f"domain-{domain_id}"


def domain_name_stream(domain: str) -> str:
    """One stream per DNS name across organizations; a normalized name has no ambiguity."""
    return f"domainname-{domain}"
