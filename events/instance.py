"""Events of an instance stream (`instance-<uuid>`)."""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

from events.registry import DomainEvent
from events.secrets import Sealed

OdooVersion = Literal["15.0", "16.0", "17.0", "18.0", "19.0"]
OdooEdition = Literal["community", "enterprise"]
EnvironmentType = Literal["production", "staging", "development"]
Color = Literal["blue", "green"]
ControlAction = Literal["start", "stop", "restart"]
LogLevel = Literal["debug", "info", "warn", "error", "critical"]
FIRST_COLOR: Final[Color] = "blue"  # the colour a provisioning starts and routes to


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


class InstanceCreated(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    name: str
    slug: str
    server_id: str
    project_id: str | None
    template_id: str | None
    branch: str | None
    environment_type: EnvironmentType
    odoo_version: OdooVersion
    odoo_edition: OdooEdition
    addons_path: str | None
    env_vars: dict[str, Sealed]
    auto_subdomain: str
    http_port: int
    longpolling_port: int
    http_port_host: int
    longpolling_port_host: int
    settings: InstanceSettings
    mcp_write_enabled: bool
    db_name: str
    admin_password: Sealed
    db_password: Sealed
    created_at: datetime


class ProvisioningRequested(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    server_id: str
    operation_id: str


class InstanceUpdated(DomainEvent, frozen=True, kw_only=True):
    """Only the fields that changed are set; an update that changes nothing emits nothing."""

    instance_id: str
    name: str | msgspec.UnsetType = msgspec.UNSET
    addons_path: str | msgspec.UnsetType | None = msgspec.UNSET
    env_vars: dict[str, Sealed] | msgspec.UnsetType = msgspec.UNSET
    mcp_write_enabled: bool | msgspec.UnsetType = msgspec.UNSET
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
    """A teardown step failed; the instance stays `removing` and DELETE may be sent again."""

    instance_id: str
    operation_id: str
    step: str
    message: str


class InstanceRemoved(DomainEvent, frozen=True, kw_only=True):
    instance_id: str
    operation_id: str


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
    InstanceRemoved,
)


def instance_stream(instance_id: str) -> str:
    return f"instance-{instance_id}"
