"""Wire DTOs of instances (camelCase JSON, API.md "Instances"): never the event types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from api.fields import AddonsPath, Branch, EnvVars, Name, Reference, Slug
from commands.defaults import DEFAULT_ODOO_VERSION
from events.instance import (
    ControlAction,
    EnvironmentType,
    McpModelAccess,
    OdooEdition,
    OdooVersion,
)

InstanceStatus = Literal[
    "creating", "running", "stopped", "starting", "stopping", "restarting", "failed", "removing"
]


# The bodies' docstrings are their OpenAPI descriptions. Each field of a create body but
# `slug` passes into events.instance.InstanceChoices by its name (api/drafts.py); an update
# body's fields are events.instance.CHANGEABLE (tests/test_instance_definition.py holds both).
class CreateInstanceBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    name: Name
    server_id: uuid.UUID
    slug: Slug | None = None
    odoo_version: OdooVersion = DEFAULT_ODOO_VERSION
    odoo_edition: OdooEdition = "community"
    environment_type: EnvironmentType = "development"
    project_id: Reference | None = None
    branch: Branch | None = None
    template_id: Reference | None = None
    addons_path: AddonsPath | None = None
    env_vars: EnvVars = {}


class UpdateInstanceBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """At least one field. `envVars` replaces the whole set; `addonsPath: null` clears it."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    addons_path: AddonsPath | msgspec.UnsetType | None = msgspec.UNSET
    env_vars: EnvVars | msgspec.UnsetType = msgspec.UNSET
    mcp_write_enabled: bool | msgspec.UnsetType = msgspec.UNSET
    mcp_model_access: McpModelAccess | msgspec.UnsetType = msgspec.UNSET


class ControlBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    action: ControlAction


class Domain(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    domain: str
    is_primary: bool
    is_auto_generated: bool
    dns_status: str
    ssl_status: str
    ssl_expires_at: datetime | None
    dns_provider: str | None
    dns_record_id: str | None
    created_at: datetime
    # `dnsStatus` is verified, `sslStatus` active, only once checked and installed (issue 16).
    dns_message: str | None = None


class Instance(msgspec.Struct, rename="camel", kw_only=True):
    """Every field is always present (null where unknown); `version` is the stream version,
    also sent as the ETag."""

    id: str
    name: str
    slug: str
    server_id: str
    project_id: str | None
    template_id: str | None
    branch: str | None
    environment_type: EnvironmentType
    odoo_version: OdooVersion
    odoo_edition: OdooEdition
    status: InstanceStatus
    status_message: str | None
    active_color: Literal["blue", "green"] | None
    addons_path: str | None
    env_vars: dict[str, str]
    auto_subdomain: str
    domains: list[Domain]
    http_port: int
    http_port_host: int
    longpolling_port: int
    longpolling_port_host: int
    workers: int
    max_cron_threads: int
    limit_memory_hard: int
    limit_memory_soft: int
    limit_time_cpu: int
    limit_time_real: int
    log_level: str
    mcp_write_enabled: bool
    mcp_model_access: Annotated[
        McpModelAccess,
        msgspec.Meta(
            description="Globs of the Odoo models MCP's tools may read, write and unlink"
            ' (docs/mcp.md, "Model access"); fixed refusals hold whatever these say'
        ),
    ]
    health_score: int | None
    health_score_grade: str | None
    health_score_updated_at: datetime | None
    last_seen_at: datetime | None
    last_restart_at: Annotated[
        datetime | None,
        msgspec.Meta(
            description="When a health observation first showed the serving container"
            " restarted by Docker (null until one did)"
        ),
    ]
    restart_count: Annotated[
        int | None,
        msgspec.Meta(
            description="Times Docker restarted the container serving now (its RestartCount,"
            " as the health observer last saw it; null until observed): the health's"
            " restartCount. A restart asked for through the API is an operation, not counted"
            " here."
        ),
    ]
    enterprise_build_id: str | None
    enterprise_deployed_at: datetime | None
    enterprise_update_available: bool | None
    wkhtmltopdf_status: str | None
    wkhtmltopdf_version: str | None
    last_backup_at: Annotated[
        datetime | None,
        msgspec.Meta(description="When the latest completed backup finished (null: none yet)"),
    ]
    last_backup_status: Annotated[
        Literal["running", "completed", "failed"] | None,
        msgspec.Meta(description="The status of the latest backup asked for (null: none)"),
    ]
    created_at: datetime
    updated_at: datetime
    version: int


class InstancePage(msgspec.Struct, rename="camel", kw_only=True):
    instances: list[Instance]
    next_cursor: str | None


class AdminCredentials(msgspec.Struct, rename="camel", kw_only=True):
    """The Odoo admin user's login and current password (manage:instances; audited)."""

    login: str
    password: str
