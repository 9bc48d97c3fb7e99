"""Events of an instance stream (`instance-<uuid>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Generic, Literal, TypeVar

import msgspec

from events.registry import DomainEvent, Upcaster
from events.secrets import Sealed

OdooVersion = Literal["15.0", "16.0", "17.0", "18.0", "19.0"]
OdooEdition = Literal["community", "enterprise"]
EnvironmentType = Literal["production", "staging", "development"]
Color = Literal["blue", "green"]
ControlAction = Literal["start", "stop", "restart"]
LogLevel = Literal["debug", "info", "warn", "error", "critical"]
FIRST_COLOR: Final[Color] = "blue"  # the colour a provisioning starts and routes to
# The login of the user Odoo creates with a new database; odoofleet gives it a password.
ADMIN_LOGIN: Final = "admin"


def idle_color(active: Color | None) -> Color:
    """The colour not serving traffic; before the first provisioning completes, that is the
    one FIRST_COLOR is not."""
    return "blue" if active == "green" else "green"


class InstanceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Runtime settings of an Odoo instance, fixed at creation from its environment type."""

    workers: int
    max_cron_threads: int
    limit_memory_hard: int
    limit_memory_soft: int
    limit_time_cpu: int
    limit_time_real: int
    log_level: LogLevel


# A secret as the edge holds it (plaintext) or as commands and events carry it (sealed).
Secret = TypeVar("Secret", str, Sealed)


class InstanceChoices(msgspec.Struct, Generic[Secret], frozen=True, kw_only=True):
    """What a new instance is created with, chosen before its create's transaction reserves
    its names and ports: by the client, by the defaults, or generated at the edge.

    Each field is written here once; the create request resolved at the edge holds them with
    plaintext secrets (commands/create_instance.InstanceDraft), the create command and
    InstanceCreated sealed (InstanceDefinition[Sealed])."""

    instance_id: str
    name: str
    server_id: str
    project_id: str | None
    template_id: str | None
    branch: str | None
    environment_type: EnvironmentType
    odoo_version: OdooVersion
    odoo_edition: OdooEdition
    addons_path: str | None
    env_vars: dict[str, Secret]
    http_port: int
    longpolling_port: int
    settings: InstanceSettings
    mcp_write_enabled: bool
    # Odoo's master password (`admin_passwd` in odoo.conf), which guards its database manager.
    admin_password: Secret
    db_password: Secret
    # The password of the ADMIN_LOGIN user; None only for an instance created before
    # odoofleet set one (InstanceCreated version 1).
    admin_user_password: Secret | None = None


class InstanceDefinition(InstanceChoices[Secret], frozen=True, kw_only=True):
    """The choices, with what the create's transaction reserved for the instance (its slug,
    host name and host ports) and what follows from its slug (its database)."""

    slug: str
    auto_subdomain: str
    http_port_host: int
    longpolling_port_host: int
    db_name: str


class InstanceCreated(DomainEvent, InstanceDefinition[Sealed], frozen=True, kw_only=True):
    created_at: datetime

    schema_version: ClassVar[int] = 2


def instance_created_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no admin user password: such an instance kept the one Odoo gave it."""
    return {**data, "admin_user_password": None}


class ProvisioningRequested(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    server_id: str
    operation_id: str


# An Odoo model name, or a glob of them (`*`, `?`, `[…]` as fnmatch reads them).
ModelPattern = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.*?\[\]!-]{1,128}$")]
# A list, not a tuple: the OpenAPI document renders a tuple of constrained strings as
# `oneOf [string, {}]`, which no value can satisfy for a schema checker.
ModelPatterns = Annotated[list[ModelPattern], msgspec.Meta(max_length=100)]


def _every_model() -> list[str]:
    return ["*"]


class McpModelAccess(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The Odoo models MCP's tools may read, write and unlink on an instance, as globs; the
    fixed refusals of api/mcp/policy.py (secrets never read, ir.*/res.users never written,
    accounting never unlinked) hold whatever these say. The default allows the rest."""

    read: ModelPatterns = msgspec.field(default_factory=_every_model)
    write: ModelPatterns = msgspec.field(default_factory=_every_model)
    unlink: ModelPatterns = msgspec.field(default_factory=_every_model)


class InstanceChanges(msgspec.Struct, Generic[Secret], frozen=True, kw_only=True):
    """What an update (PATCH) may change, each field written here once: the edge holds the
    changes with plaintext env vars, the update command and InstanceUpdated sealed. A field
    left UNSET is not being changed."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    addons_path: str | msgspec.UnsetType | None = msgspec.UNSET
    env_vars: dict[str, Secret] | msgspec.UnsetType = msgspec.UNSET
    mcp_write_enabled: bool | msgspec.UnsetType = msgspec.UNSET
    mcp_model_access: McpModelAccess | msgspec.UnsetType = msgspec.UNSET


CHANGEABLE: Final = tuple(field.name for field in msgspec.structs.fields(InstanceChanges))


class InstanceUpdated(DomainEvent, InstanceChanges[Sealed], frozen=True, kw_only=True):
    """Only the fields that changed are set; an update that changes nothing emits nothing."""

    instance_id: str
    updated_at: datetime


class ActionRequested(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    action: ControlAction
    operation_id: str


class RedeployRequested(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    target_color: Color


class RemovalRequested(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    # The provisioning operation cancelled by this removal, if one was still running.
    cancels_operation_id: str | None = None
    # A final backup before anything is removed (DELETE …?finalBackup=false skips it).
    final_backup: bool = True


class InstanceProvisioned(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    active_color: Color


class ProvisioningFailed(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    step: str
    message: str


class InstanceStarted(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str


class InstanceStopped(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str


class InstanceRestarted(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    restarted_at: datetime


class ActionFailed(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    action: str
    step: str
    message: str


class InstanceRedeployed(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str
    active_color: Color


class RemovalFailed(DomainEvent, frozen=True, kw_only=True):
    """A teardown attempt failed at `step`; the instance stays `removing` and the worker tries
    again (a DELETE also does)."""

    instance_id: str
    operation_id: str
    step: str
    message: str


class RemovalAbandoned(DomainEvent, frozen=True, kw_only=True):
    """The teardown kept failing and its retries are used up: the instance is `failed`. A new
    DELETE tries again; DELETE ?force=true records it removed without the server's word."""

    instance_id: str
    operation_id: str
    step: str
    message: str


class InstanceRemoved(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str


class InstanceRemovalForced(DomainEvent, frozen=True, kw_only=True):
    """An operator ended a removal that kept failing: the instance is removed, its slug and
    host ports are given back and its secrets shredded, whatever is left on the server.
    `failure` is the last teardown failure it overrode."""

    instance_id: str
    failure: str
    forced_at: datetime


class AdminCredentialsRevealed(DomainEvent, frozen=True, kw_only=True):
    """Someone was shown the admin user's credentials (the secret itself is not here)."""

    instance_id: str
    revealed_by: str
    revealed_at: datetime


class EnvVarsRevealed(DomainEvent, frozen=True, kw_only=True):
    """Someone was shown the envVars values (`GET /api/instances/{id}?reveal=envVars`): the
    names of the variables shown are here, their values are not."""

    instance_id: str
    names: list[str]
    revealed_by: str
    revealed_at: datetime


class AdminPasswordRotationRequested(DomainEvent, frozen=True, kw_only=True):
    """A new password for the admin user, generated at the edge; it holds once the rotation
    saga records AdminPasswordRotated."""

    instance_id: str
    operation_id: str
    admin_user_password: Sealed


class AdminPasswordRotated(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str


class AdminPasswordRotationFailed(DomainEvent, frozen=True, kw_only=True):
    """The new password was not set: the previous one still holds."""

    instance_id: str
    operation_id: str
    step: str
    message: str


class McpCredentialsRequested(DomainEvent, frozen=True, kw_only=True):
    """New Odoo credentials for MCP (the dedicated API user and a fresh API key): asked after
    the first provisioning, or by a rotation; the credentials saga issues them in Odoo."""

    instance_id: str
    operation_id: str


class McpCredentialsIssued(DomainEvent, frozen=True, kw_only=True):
    """The credentials MCP calls the instance's Odoo with, from now on. The key is sealed under
    the instance's data key: forgetting that key (deletion) shreds it."""

    instance_id: str
    operation_id: str
    login: str
    api_key: Sealed


class McpCredentialsFailed(DomainEvent, frozen=True, kw_only=True):
    """No new credentials were issued: the ones in force (if any) still hold."""

    instance_id: str
    operation_id: str
    step: str
    message: str


INSTANCE_EVENTS: tuple[type[DomainEvent], ...] = (
    InstanceCreated,
    ProvisioningRequested,
    InstanceUpdated,
    ActionRequested,
    RedeployRequested,
    RemovalRequested,
    InstanceProvisioned,
    ProvisioningFailed,
    InstanceStarted,
    InstanceStopped,
    InstanceRestarted,
    ActionFailed,
    InstanceRedeployed,
    RemovalFailed,
    RemovalAbandoned,
    InstanceRemoved,
    InstanceRemovalForced,
    AdminCredentialsRevealed,
    AdminPasswordRotationRequested,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    EnvVarsRevealed,
    McpCredentialsRequested,
    McpCredentialsIssued,
    McpCredentialsFailed,
)
INSTANCE_UPCASTERS: Final[dict[tuple[str, int], Upcaster]] = {
    ("InstanceCreated", 1): instance_created_v1,
}


def instance_stream(instance_id: str) -> str:
    return f"instance-{instance_id}"
