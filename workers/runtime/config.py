"""What a worker process reads of the installation's settings, built by the composition
root (odoofleet/settings.py): the workers never read the environment or the whole Settings."""

from __future__ import annotations

import msgspec


class WorkerConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The settings it reads, by their names in odoofleet.settings.Settings (where each
    is documented); Settings.for_workers() builds it."""

    database_url: str
    nats_url: str
    secret_key: str
    nats_stream: str
    subject_prefix: str
    health_interval: float
    health_heartbeat: float
    worker_name: str
    server_allowed_networks: str
    server_denied_networks: str
    webhook_allowed_networks: str
    webhook_timeout: float
    ssh_output_limit: int
    worker_org_concurrency: int
    acme_directory_url: str
    acme_email: str
    acme_ca_bundle: str
    acme_account_key_file: str
    dns_resolvers: str
    certificate_renew_days: int
    hsts: bool
    https_port: int
    domain_check_interval: float
    auto_domain_tls: bool
