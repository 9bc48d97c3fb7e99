"""What the API reads of the installation's settings, built by the composition root
(odoofleet/settings.py): the API never reads the environment or the whole Settings."""

from __future__ import annotations

import msgspec


class ApiConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The settings it reads, by their names in odoofleet.settings.Settings (where each
    is documented); Settings.for_api() builds it."""

    database_url: str
    nats_url: str
    secret_key: str
    jwt_secret: str
    jwt_public_key: str
    jwt_algorithm: str
    jwt_issuer: str | None
    jwt_audience: str | None
    jwt_max_lifetime: float
    base_domain: str
    server_allowed_networks: str
    server_denied_networks: str
    webhook_allowed_networks: str
    max_servers_per_org: int
    server_validations_per_minute: int
    event_stream_heartbeat: float
    event_stream_buffer: int
    event_stream_max: int
    mcp_session_idle_timeout: float
    mcp_calls_per_minute: int
    mcp_result_max_bytes: int
    mcp_odoo_timeout: float
