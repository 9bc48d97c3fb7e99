"""The domain read model: one row per domain not removed (custom domains and the instances'
auto subdomains once recorded), how events build it, and its reads (an instance's domains;
the domains whose DNS check or certificate is due; the instances whose auto subdomain is not
recorded yet)."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

from events.domain import (
    CertificateFailed,
    CertificateIssued,
    CertificateRenewed,
    CertificateRequested,
    DomainAdded,
    DomainRemoved,
    DomainVerificationFailed,
    DomainVerificationRequested,
    DomainVerified,
    PrimaryDomainChanged,
)
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, fetch_text

DnsStatus = Literal["pending", "verified", "failed"]
SslStatus = Literal["pending", "active", "expired", "error"]


class DomainView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    instance_id: str
    name: str  # the domain (`name`: what the audit trail shows a resource by)
    created_at: datetime
    primary_since: int | None = None
    dns_status: DnsStatus = "pending"
    dns_message: str | None = None
    dns_retry_at: datetime | None = None
    ssl_expires_at: datetime | None = None
    ssl_message: str | None = None  # why the last order failed; None once one succeeds
    ssl_retry_at: datetime | None = None
    certificate_request: str | None = None  # the order in flight
    is_auto_generated: bool = False  # the instance's `<slug>.<base domain>`

    def ssl_status(self, now: datetime) -> SslStatus:
        """`active` only with a certificate installed that has not expired; `error` when the
        last order failed (a renewal's failure too), `expired` once the date has passed."""
        if self.ssl_expires_at is not None and self.ssl_expires_at <= now:
            return "expired"
        if self.ssl_message is not None:
            return "error"
        return "active" if self.ssl_expires_at is not None else "pending"


def added(_: DomainView | None, e: DomainAdded, env: Envelope) -> DomainView:
    return DomainView(
        id=e.domain_id,
        org_id=env.meta.org_id,
        instance_id=e.instance_id,
        name=e.domain,
        created_at=e.added_at,
        is_auto_generated=e.auto_generated,
        version=env.version,
    )


def verification_requested(
    row: DomainView | None, _: DomainVerificationRequested, env: Envelope
) -> DomainView:
    return msgspec.structs.replace(need(row, env), dns_retry_at=None)


def verified(row: DomainView | None, _: DomainVerified, env: Envelope) -> DomainView:
    return msgspec.structs.replace(
        need(row, env), dns_status="verified", dns_message=None, dns_retry_at=None
    )


def verification_failed(
    row: DomainView | None, e: DomainVerificationFailed, env: Envelope
) -> DomainView:
    return msgspec.structs.replace(
        need(row, env), dns_status="failed", dns_message=e.message, dns_retry_at=e.retry_at
    )


def primary(row: DomainView | None, _: PrimaryDomainChanged, env: Envelope) -> DomainView:
    return msgspec.structs.replace(need(row, env), primary_since=env.recorded.position)


def certificate_requested(
    row: DomainView | None, e: CertificateRequested, env: Envelope
) -> DomainView:
    return msgspec.structs.replace(need(row, env), certificate_request=e.request_id)


def certificate_issued(row: DomainView | None, e: CertificateIssued, env: Envelope) -> DomainView:
    return msgspec.structs.replace(
        need(row, env),
        ssl_expires_at=e.expires_at,
        ssl_message=None,
        ssl_retry_at=None,
        certificate_request=None,
    )


def certificate_failed(row: DomainView | None, e: CertificateFailed, env: Envelope) -> DomainView:
    return msgspec.structs.replace(
        need(row, env), ssl_message=e.reason, ssl_retry_at=e.retry_at, certificate_request=None
    )


def removed(_: DomainView | None, __: DomainRemoved, ___: Envelope) -> None:
    return None


DOMAINS: Folder[DomainView] = Folder(
    "domain",
    DomainView,
    {
        DomainAdded: added,
        DomainVerificationRequested: verification_requested,
        DomainVerified: verified,
        DomainVerificationFailed: verification_failed,
        PrimaryDomainChanged: primary,
        CertificateRequested: certificate_requested,
        CertificateIssued: certificate_issued,
        CertificateRenewed: certificate_issued,
        CertificateFailed: certificate_failed,
        DomainRemoved: removed,
    },
)


class ListedDomain(DomainView, frozen=True, kw_only=True):
    is_primary: bool


# The primary is the domain made primary last, the auto subdomain while none was; rows of an
# instance are few (no pagination). The auto subdomain first, then oldest first.
_OF_INSTANCE: Final = (
    b"SELECT coalesce(json_agg(d ORDER BY d.is_auto_generated DESC, d.created_at, d.id),"
    b" '[]')::text FROM ("
    b" SELECT t.*, coalesce(t.primary_since = max(t.primary_since) OVER (),"
    b"  t.is_auto_generated AND max(t.primary_since) OVER () IS NULL, false) AS is_primary"
    b" FROM domains t WHERE t.org_id = %s AND t.instance_id = %s) d"
)
_DUE: Final = (
    b"SELECT coalesce(json_agg(d ORDER BY d.id), '[]')::text FROM domains d WHERE"
    b" (d.dns_retry_at IS NOT NULL AND d.dns_retry_at <= %(now)s)"
    b" OR (d.ssl_expires_at IS NOT NULL AND d.ssl_expires_at <= %(renew_before)s"
    b"  AND d.certificate_request IS NULL"
    b"  AND (d.ssl_retry_at IS NULL OR d.ssl_retry_at <= %(now)s))"
    b" OR (d.dns_status = 'verified' AND d.ssl_expires_at IS NULL"
    b"  AND d.certificate_request IS NULL AND d.ssl_retry_at <= %(now)s)"
)

# Domains whose instance has no row: removed (or not projected yet: the caller asks the
# instance's stream before acting).
_ORPHANS: Final = (
    b"SELECT coalesce(json_agg(d ORDER BY d.id), '[]')::text FROM domains d WHERE NOT EXISTS"
    b" (SELECT 1 FROM instances i WHERE i.id = d.instance_id AND i.org_id = d.org_id)"
)

# Instances routed to a colour (provisioned once) and not being removed, whose auto subdomain
# has no row: created before it was recorded, or its recording was missed.
_WITHOUT_AUTO: Final = (
    b"SELECT coalesce(json_agg(json_build_object('id', i.id, 'org_id', i.org_id)"
    b" ORDER BY i.id), '[]')::text FROM instances i"
    b" WHERE i.active_color IS NOT NULL AND i.status <> 'removing' AND NOT EXISTS"
    b" (SELECT 1 FROM domains d WHERE d.instance_id = i.id AND d.org_id = i.org_id"
    b"  AND d.is_auto_generated)"
)


class InstanceRef(msgspec.Struct, frozen=True):
    id: str
    org_id: str


_listed: Final = msgspec.json.Decoder(list[ListedDomain])
_rows: Final = msgspec.json.Decoder(list[DomainView])
_instances: Final = msgspec.json.Decoder(list[InstanceRef])


async def list_domains(conn: Reader, org_id: str, instance_id: str) -> list[ListedDomain]:
    """The instance's domains, oldest first (none of another organization's)."""
    return _listed.decode(await fetch_text(conn, _OF_INSTANCE, (org_id, instance_id)) or "[]")


async def due_domains(conn: Reader, now: datetime, renew_before: datetime) -> list[DomainView]:
    """Across organizations (the workers' leader): domains whose failed DNS check is due again,
    whose certificate expires before `renew_before`, or whose failed first order is due."""
    found = await fetch_text(conn, _DUE, {"now": now, "renew_before": renew_before})
    return _rows.decode(found or "[]")


async def orphan_domains(conn: Reader) -> list[DomainView]:
    """Domains whose instance the instances read model no longer shows."""
    return _rows.decode(await fetch_text(conn, _ORPHANS, ()) or "[]")


async def instances_without_auto_domain(conn: Reader) -> list[InstanceRef]:
    """Across organizations (the workers' leader): instances whose auto subdomain is to be
    recorded (the command asks the instance's stream before recording anything)."""
    return _instances.decode(await fetch_text(conn, _WITHOUT_AUTO, ()) or "[]")
