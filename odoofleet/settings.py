"""Settings, parsed once from the environment into a frozen Struct (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, TypeVar

import msgspec

from api.config import ApiConfig
from workers.runtime.config import WorkerConfig
from workers.ssh.control_plane_addresses import server_network_policy
from workers.ssh.network_policy import NetworkPolicy, parse_networks

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/odoofleet"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"


C = TypeVar("C", ApiConfig, WorkerConfig)
Positive = Annotated[int, msgspec.Meta(ge=1)]


class SettingsError(ValueError):
    """A setting in the environment has a value odoofleet cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    nats_url: str = DEFAULT_NATS_URL
    # Master key that wraps the per-stream data keys (see events/secrets.py).
    secret_key: str = ""
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwt_algorithm: str = "HS256"
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # Longest a token may live, exp - iat, in seconds (api/auth.py); also what mint allows.
    jwt_max_lifetime: Annotated[float, msgspec.Meta(gt=0)] = 86400.0
    base_domain: str = "odoo.localhost"
    # JetStream stream name and subject prefix; tests give each run its own.
    nats_stream: str = "ODOOFLEET"
    subject_prefix: str = "odoofleet"
    health_interval: float = 30.0
    health_heartbeat: float = 300.0
    log_format: str = "json"
    log_level: str = "INFO"
    worker_name: str = ""
    # Comma-separated CIDRs a server's address may (or may not) be in
    # (workers/ssh/network_policy.py).
    server_allowed_networks: str = ""
    server_denied_networks: str = ""
    # Comma-separated CIDRs webhooks may reach besides public addresses (http only to these).
    webhook_allowed_networks: str = ""
    # Seconds one webhook delivery may take, connection to last byte read.
    webhook_timeout: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_servers_per_org: Positive = 100
    # Requests to validate a server again, per organization and minute (per API process).
    server_validations_per_minute: Positive = 10
    # Bytes a server may answer one command with (stdout and stderr each).
    ssh_output_limit: Positive = 1 << 20
    # Operations of one kind that one organization may run at once in one worker process.
    worker_org_concurrency: Positive = 2
    # GET /api/events/stream: seconds between keepalive comments, events buffered per stream
    # before a slow client is cut off, open streams per API process.
    event_stream_heartbeat: Annotated[float, msgspec.Meta(gt=0)] = 15.0
    event_stream_buffer: Positive = 1000
    event_stream_max: Positive = 1000
    # Custom domains (issue 16): the ACME CA and account, the CA bundle its directory's HTTPS
    # is checked against (empty: the system's), the DNS resolvers domains are checked
    # against (comma-separated host[:port]; empty: the system's), renewal lead time in days,
    # HSTS on custom domains (opt-in), the port the servers' HTTPS forwarder publishes.
    acme_directory_url: str = "https://acme-v02.api.letsencrypt.org/directory"
    acme_email: str = ""
    acme_ca_bundle: str = ""
    acme_account_key_file: str = ""
    dns_resolvers: str = ""
    certificate_renew_days: Positive = 30
    hsts: bool = False
    https_port: Positive = 443
    domain_check_interval: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    # Record each provisioned instance's auto subdomain as a domain, checked in DNS and given
    # a certificate like a custom domain (docs/domains.md); false: listed pending, never checked.
    auto_domain_tls: bool = True
    # MCP (issue 18, api/mcp): idle seconds before a session ends, tool calls per key and
    # minute, bytes one tool result may hold, seconds one Odoo call may take.
    mcp_session_idle_timeout: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    mcp_calls_per_minute: Positive = 120
    mcp_result_max_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 32768
    mcp_odoo_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0

    def server_addresses(self) -> NetworkPolicy:
        """Which addresses a server may have (the control plane's own never)."""
        return server_network_policy(
            allowed=self.server_allowed_networks,
            denied=self.server_denied_networks,
            database_url=self.database_url,
            nats_url=self.nats_url,
        )

    def for_api(self) -> ApiConfig:
        """What the API reads of these settings."""
        return _narrowed(self, ApiConfig)

    def for_workers(self) -> WorkerConfig:
        """What a worker process reads of these settings."""
        return _narrowed(self, WorkerConfig)


def _narrowed(settings: Settings, config: type[C]) -> C:
    return config(**{f.name: getattr(settings, f.name) for f in msgspec.structs.fields(config)})


_ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "nats_url": "NATS_URL",
    "secret_key": "ODOOFLEET_SECRET_KEY",
    "jwt_secret": "ODOOFLEET_JWT_SECRET",
    "jwt_public_key": "ODOOFLEET_JWT_PUBLIC_KEY",
    "jwt_algorithm": "ODOOFLEET_JWT_ALGORITHM",
    "jwt_issuer": "ODOOFLEET_JWT_ISSUER",
    "jwt_audience": "ODOOFLEET_JWT_AUDIENCE",
    "jwt_max_lifetime": "ODOOFLEET_JWT_MAX_LIFETIME",
    "base_domain": "ODOOFLEET_BASE_DOMAIN",
    "nats_stream": "ODOOFLEET_NATS_STREAM",
    "subject_prefix": "ODOOFLEET_SUBJECT_PREFIX",
    "health_interval": "ODOOFLEET_HEALTH_INTERVAL",
    "health_heartbeat": "ODOOFLEET_HEALTH_HEARTBEAT",
    "log_format": "ODOOFLEET_LOG_FORMAT",
    "log_level": "ODOOFLEET_LOG_LEVEL",
    "worker_name": "ODOOFLEET_WORKER_NAME",
    "server_allowed_networks": "ODOOFLEET_SERVER_ALLOWED_NETWORKS",
    "server_denied_networks": "ODOOFLEET_SERVER_DENIED_NETWORKS",
    "webhook_allowed_networks": "ODOOFLEET_WEBHOOK_ALLOWED_NETWORKS",
    "webhook_timeout": "ODOOFLEET_WEBHOOK_TIMEOUT",
    "max_servers_per_org": "ODOOFLEET_MAX_SERVERS_PER_ORG",
    "server_validations_per_minute": "ODOOFLEET_SERVER_VALIDATIONS_PER_MINUTE",
    "ssh_output_limit": "ODOOFLEET_SSH_OUTPUT_LIMIT",
    "worker_org_concurrency": "ODOOFLEET_WORKER_ORG_CONCURRENCY",
    "event_stream_heartbeat": "ODOOFLEET_EVENT_STREAM_HEARTBEAT",
    "event_stream_buffer": "ODOOFLEET_EVENT_STREAM_BUFFER",
    "event_stream_max": "ODOOFLEET_EVENT_STREAM_MAX",
    "acme_directory_url": "ODOOFLEET_ACME_DIRECTORY_URL",
    "acme_email": "ODOOFLEET_ACME_EMAIL",
    "acme_ca_bundle": "ODOOFLEET_ACME_CA_BUNDLE",
    "acme_account_key_file": "ODOOFLEET_ACME_ACCOUNT_KEY_FILE",
    "dns_resolvers": "ODOOFLEET_DNS_RESOLVERS",
    "certificate_renew_days": "ODOOFLEET_CERTIFICATE_RENEW_DAYS",
    "hsts": "ODOOFLEET_HSTS",
    "https_port": "ODOOFLEET_HTTPS_PORT",
    "domain_check_interval": "ODOOFLEET_DOMAIN_CHECK_INTERVAL",
    "auto_domain_tls": "ODOOFLEET_AUTO_DOMAIN_TLS",
    "mcp_session_idle_timeout": "ODOOFLEET_MCP_SESSION_IDLE_TIMEOUT",
    "mcp_calls_per_minute": "ODOOFLEET_MCP_CALLS_PER_MINUTE",
    "mcp_result_max_bytes": "ODOOFLEET_MCP_RESULT_MAX_BYTES",
    "mcp_odoo_timeout": "ODOOFLEET_MCP_ODOO_TIMEOUT",
}

SUPPORTED_JWT_ALGORITHMS = ("HS256", "RS256", "ES256")


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from `environ` (default: the process environment), then apply overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {
        field: env[name] for field, name in _ENV_NAMES.items() if env.get(name, "") != ""
    }
    raw.update(overrides)
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise SettingsError(str(e)) from e
    if settings.jwt_algorithm not in SUPPORTED_JWT_ALGORITHMS:
        raise SettingsError(
            f"ODOOFLEET_JWT_ALGORITHM must be one of {', '.join(SUPPORTED_JWT_ALGORITHMS)}"
        )
    for field in ("server_allowed_networks", "server_denied_networks", "webhook_allowed_networks"):
        try:
            parse_networks(getattr(settings, field))
        except ValueError as e:
            raise SettingsError(f"{_ENV_NAMES[field]}: {e}") from e
    return settings
