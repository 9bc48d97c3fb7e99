"""What the domain sagas and the renewal leader are configured with (from the settings)."""

from __future__ import annotations

import msgspec

from workers.acme.issuer import AcmeConfig
from workers.runtime.config import WorkerConfig


class DomainConfig(msgspec.Struct, frozen=True, kw_only=True):
    """`resolvers`: the DNS servers domains are checked against (`host[:port]`); none: the
    system's. `renew_before_days`: a certificate is renewed this long before it expires.
    `http_port`/`https_port`: the ports the servers' proxies answer on (80/443 in production).
    `hsts`: send Strict-Transport-Security on the custom domains' HTTPS (opt-in).
    `auto_domains`: record each provisioned instance's auto subdomain as a domain (checked
    and certified like a custom one)."""

    acme: AcmeConfig = AcmeConfig()
    resolvers: tuple[str, ...] = ()
    renew_before_days: int = 30
    hsts: bool = False
    http_port: int = 80
    https_port: int = 443
    # How often the leader looks for due renewals and DNS retries.
    check_interval: float = 60.0
    auto_domains: bool = False


def domain_config(settings: WorkerConfig) -> DomainConfig:
    acme = AcmeConfig(
        directory_url=settings.acme_directory_url,
        email=settings.acme_email,
        ca_bundle=settings.acme_ca_bundle,
        account_key_file=settings.acme_account_key_file,
    )
    resolvers = tuple(r.strip() for r in settings.dns_resolvers.split(",") if r.strip())
    return DomainConfig(
        acme=acme,
        resolvers=resolvers,
        renew_before_days=settings.certificate_renew_days,
        hsts=settings.hsts,
        https_port=settings.https_port,
        check_interval=settings.domain_check_interval,
        auto_domains=settings.auto_domain_tls,
    )
