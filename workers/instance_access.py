"""An instance stream as the sagas see it: its settings, where its lifecycle is, which
operations have an outcome, and its spec with the secrets opened by the Vault."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from events.instance import (
    ActionFailed,
    ActionRequested,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    Color,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemovalForced,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    ProvisioningRequested,
    RemovalAbandoned,
    RemovalRequested,
    instance_stream,
)
from events.registry import DomainEvent
from events.secrets import MASK, Sealed, Vault
from workers.spec import InstanceSpec, check_spec


class Settled(msgspec.Struct, frozen=True):
    """The outcome an operation left on its instance's (or server's) stream."""

    failed: bool = False
    step: str | None = None
    message: str = ""


class InstanceRecord(msgspec.Struct, kw_only=True):
    created: InstanceCreated | None = None
    # The admin user's password in force: the one generated at creation, then each one a
    # rotation recorded as set (a rotation's request names the one it will set).
    admin_user_password: Sealed | None = None
    rotations: dict[str, Sealed] = msgspec.field(default_factory=dict)
    addons_path: str | None = None
    env_vars: dict[str, Sealed] = msgspec.field(default_factory=dict)
    provisioned: bool = False
    active_color: Color | None = None
    stopped: bool = False  # by the last control operation: nothing serves until a start
    # A runtime setting (addonsPath, envVars) changed before the first provisioning completed:
    # a colour that an earlier provisioning started may run older ones.
    reconfigured: bool = False
    removal: RemovalRequested | None = None
    removed: bool = False
    # The operations that provisioned or resumed provisioning, oldest first.
    provisioning_ops: list[str] = msgspec.field(default_factory=list)
    outcomes: dict[str, Settled] = msgspec.field(default_factory=dict)

    @property
    def instance_id(self) -> str:
        return self.require().instance_id

    @property
    def server_id(self) -> str:
        return self.require().server_id

    def require(self) -> InstanceCreated:
        if self.created is None:
            raise LookupError("the instance stream has no InstanceCreated")
        return self.created


def evolve(record: InstanceRecord, event: DomainEvent) -> InstanceRecord:
    match event:
        case InstanceCreated():
            record.created = event
            record.addons_path, record.env_vars = event.addons_path, event.env_vars
            record.admin_user_password = event.admin_user_password
        case InstanceUpdated():
            _updated(record, event)
        case ProvisioningRequested(operation_id=operation_id):
            record.provisioning_ops.append(operation_id)
        case ActionRequested(action="start" | "restart") if not record.provisioned:
            # Starting a never-provisioned (failed) instance resumes its provisioning.
            record.provisioning_ops.append(event.operation_id)
        case InstanceProvisioned() | InstanceRedeployed():
            record.provisioned, record.active_color = True, event.active_color
            record.stopped = False
            record.outcomes[event.operation_id] = Settled()
        case InstanceStarted() | InstanceStopped() | InstanceRestarted():
            record.stopped = isinstance(event, InstanceStopped)
            record.outcomes[event.operation_id] = Settled()
        case ProvisioningFailed() | ActionFailed() | AdminPasswordRotationFailed():
            record.outcomes[event.operation_id] = Settled(True, event.step, event.message)
        case AdminPasswordRotationRequested():
            record.rotations[event.operation_id] = event.admin_user_password
        case AdminPasswordRotated():
            record.admin_user_password = record.rotations.get(
                event.operation_id, record.admin_user_password
            )
            record.outcomes[event.operation_id] = Settled()
        case RemovalRequested():
            record.removal = event
        case RemovalAbandoned():
            record.outcomes[event.operation_id] = Settled(True, event.step, event.message)
        case InstanceRemoved():
            record.removed = True
            record.outcomes[event.operation_id] = Settled()
        case InstanceRemovalForced():
            record.removed = True
    return record


def _updated(record: InstanceRecord, event: InstanceUpdated) -> None:
    if not isinstance(event.addons_path, msgspec.UnsetType):
        record.addons_path = event.addons_path
    if not isinstance(event.env_vars, msgspec.UnsetType):
        record.env_vars = event.env_vars
    runtime = (event.addons_path, event.env_vars)
    if not record.provisioned and any(v is not msgspec.UNSET for v in runtime):
        record.reconfigured = True


def fold_instance(events: Iterable[DomainEvent]) -> InstanceRecord:
    record = InstanceRecord()
    for event in events:
        evolve(record, event)
    return record


def may_settle(operation_id: str, events: Iterable[DomainEvent]) -> bool:
    """An operation's outcome may be recorded once, and never once removal was asked for."""
    record = fold_instance(events)
    return record.removal is None and operation_id not in record.outcomes


def may_remove(events: Iterable[DomainEvent]) -> bool:
    record = fold_instance(events)
    return record.removal is not None and not record.removed


class InstanceSecrets(msgspec.Struct, frozen=True):
    admin_password: str  # Odoo's master password (admin_passwd)
    db_password: str
    env_vars: dict[str, str]
    admin_user_password: str | None = None  # the admin user's, in force

    def values(self) -> list[str]:
        user = [] if self.admin_user_password is None else [self.admin_user_password]
        return [self.admin_password, self.db_password, *self.env_vars.values(), *user]

    def __repr__(self) -> str:
        return "InstanceSecrets(…)"


async def open_secrets(vault: Vault, record: InstanceRecord) -> InstanceSecrets:
    created, stream_id = record.require(), instance_stream(record.instance_id)
    user = record.admin_user_password
    return InstanceSecrets(
        admin_password=await vault.open(stream_id, created.admin_password),
        db_password=await vault.open(stream_id, created.db_password),
        env_vars=await vault.open_all(stream_id, record.env_vars),
        admin_user_password=None if user is None else await vault.open(stream_id, user),
    )


def spec_of(record: InstanceRecord, secrets: InstanceSecrets) -> InstanceSpec:
    """The validated spec; ValueError names the field that would be unsafe on a server."""
    if MASK in secrets.values():
        raise ValueError("the instance's secrets were forgotten (its data key is gone)")
    created = record.require()
    settings = created.settings
    return check_spec(
        InstanceSpec(
            instance_id=created.instance_id,
            slug=created.slug,
            odoo_version=created.odoo_version,
            edition=created.odoo_edition,
            workers=settings.workers,
            max_cron_threads=settings.max_cron_threads,
            limit_memory_hard=settings.limit_memory_hard,
            limit_memory_soft=settings.limit_memory_soft,
            limit_time_cpu=settings.limit_time_cpu,
            limit_time_real=settings.limit_time_real,
            log_level=settings.log_level,
            addons_path=record.addons_path,
            env_vars=secrets.env_vars,
            http_port_host=created.http_port_host,
            longpolling_port_host=created.longpolling_port_host,
            auto_subdomain=created.auto_subdomain,
            db_name=created.db_name,
            admin_password=secrets.admin_password,
            pg_password=secrets.db_password,
        )
    )
