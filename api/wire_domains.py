"""The custom domain objects of the API (API.md, "Second wave": Domain objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from projections.domains import DnsStatus, ListedDomain, SslStatus

DomainName = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class AddDomainBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """`domain`: a host name (Unicode or punycode); stored lowercase in its IDNA form."""

    domain: DomainName


class Domain(msgspec.Struct, rename="camel", kw_only=True):
    """`dnsStatus` is `verified` only once the resolver answered with the server's address,
    `sslStatus` `active` only while a certificate odoofleet installed on the server is valid.
    `dnsMessage`: the resolver's answer when the check failed; `sslMessage`: why the last
    certificate order failed."""

    id: str
    instance_id: str
    domain: str
    is_primary: bool
    is_auto_generated: bool
    dns_status: DnsStatus
    dns_message: str | None
    ssl_status: SslStatus
    ssl_message: str | None
    ssl_expires_at: datetime | None
    created_at: datetime


class DomainList(msgspec.Struct, rename="camel", kw_only=True):
    domains: list[Domain]


def domain_of(view: ListedDomain, now: datetime) -> Domain:
    return Domain(
        id=view.id,
        instance_id=view.instance_id,
        domain=view.name,
        is_primary=view.is_primary,
        is_auto_generated=view.is_auto_generated,
        dns_status=view.dns_status,
        dns_message=view.dns_message,
        ssl_status=view.ssl_status(now),
        ssl_message=view.ssl_message,
        ssl_expires_at=view.ssl_expires_at,
        created_at=view.created_at,
    )
