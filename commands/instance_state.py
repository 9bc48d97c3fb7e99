"""An instance stream folded into its lifecycle phase (one small frozen Struct per phase), each
carrying the facts its deciders and its sagas need."""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import msgspec

from commands.outcome import FailedAt, OperationOutcome, Succeeded
from commands.runner import folder
from events.instance import (
    CHANGEABLE,
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
    McpCredentialsFailed,
    McpCredentialsIssued,
    McpModelAccess,
    ProvisioningFailed,
    ProvisioningRequested,
    RemovalAbandoned,
    RemovalFailed,
    RemovalRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed


class McpCredentials(msgspec.Struct, frozen=True, kw_only=True):
    """The Odoo user MCP calls as, and its API key (sealed under the instance's data key)."""

    login: str
    api_key: Sealed


class InstanceFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the deciders and the sagas need to know about an instance, whatever its phase."""

    instance_id: str
    name: str
    slug: str
    server_id: str
    auto_subdomain: str
    addons_path: str | None
    env_vars: dict[str, Sealed]
    mcp_write_enabled: bool
    mcp_model_access: McpModelAccess = McpModelAccess()
    # What it was created with: the fixed settings, ports and secrets its files render from.
    created: InstanceCreated
    # The colour serving traffic; None until the first provisioning completes.
    active_color: Color | None = None
    # The admin user's password now set in Odoo (None: created before odoofleet set one),
    # and the new ones of rotations not settled yet, by operation.
    admin_user_password: Sealed | None = None
    rotations: dict[str, Sealed] = {}
    # The Odoo credentials MCP calls with (None: not issued yet, or issued before odoofleet
    # did; commands/mcp_credentials.py).
    mcp_credentials: McpCredentials | None = None
    # The operations that provisioned or resumed provisioning, oldest first.
    provisioning_ops: tuple[str, ...] = ()
    # Stopped by the last control operation: nothing serves until a start.
    stopped_on_purpose: bool = False
    # What each operation concluded, recorded once (commands/instance_outcomes.py).
    outcomes: dict[str, OperationOutcome] = {}

    @property
    def provisioned(self) -> bool:
        return self.active_color is not None


class Absent(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "absent"


class Creating(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "creating"
    facts: InstanceFacts
    provisioning_id: str | None = None


class Running(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "running"
    facts: InstanceFacts


class Stopped(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "stopped"
    facts: InstanceFacts


class Starting(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "starting"
    facts: InstanceFacts


class Stopping(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "stopping"
    facts: InstanceFacts


class Restarting(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "restarting"
    facts: InstanceFacts


class Failed(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "failed"
    facts: InstanceFacts
    message: str


class Removing(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "removing"
    facts: InstanceFacts
    # Set when a teardown attempt failed: the worker retries it, a new DELETE starts another
    # one, and DELETE ?force=true may end the removal.
    failure: str | None = None


class Abandoned(msgspec.Struct, frozen=True):
    """The teardown's retries are used up (RemovalAbandoned): shown as `failed`, but nothing
    may start it again; only another removal, normal or forced."""

    status: ClassVar[str] = "failed"
    facts: InstanceFacts
    failure: str


class Removed(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "removed"
    facts: InstanceFacts


Existing: TypeAlias = (
    Creating
    | Running
    | Stopped
    | Starting
    | Stopping
    | Restarting
    | Failed
    | Removing
    | Abandoned
    | Removed
)
InstanceState: TypeAlias = Absent | Existing


_AFTER_ACTION: dict[str, type[Starting | Stopping | Restarting]] = {
    "start": Starting,
    "stop": Stopping,
    "restart": Restarting,
}


def initial_state() -> InstanceState:
    return Absent()


def evolve(state: InstanceState, event: DomainEvent) -> InstanceState:
    """The phase after `event`, with its facts; events that do not move the phase keep it."""
    if isinstance(state, Absent):
        return _created(event) if isinstance(event, InstanceCreated) else state
    facts = _learned(state.facts, event)
    if isinstance(state, Removing | Abandoned | Removed):
        # Once removal was asked for, only the removal moves the phase (the outcome decider,
        # commands/instance_outcomes.py, refuses any other operation's outcome by then).
        return _while_removing(msgspec.structs.replace(state, facts=facts), event)
    match event:
        case ProvisioningRequested(operation_id=operation_id) if isinstance(state, Creating):
            return Creating(facts, operation_id)
        case ActionRequested(action=action):
            return _AFTER_ACTION[action](facts)
        case InstanceProvisioned() | InstanceRedeployed() | InstanceStarted() | InstanceRestarted():
            return Running(facts)
        case InstanceStopped():
            return Stopped(facts)
        case ActionFailed(action="redeploy"):
            # The route moves only once the new colour is ready: the old one still serves.
            return msgspec.structs.replace(state, facts=facts)
        case ProvisioningFailed(message=message) | ActionFailed(message=message):
            return Failed(facts, message)
        case RemovalRequested():
            return Removing(facts)
        case InstanceRemoved():
            return Removed(facts)
        case _:
            return msgspec.structs.replace(state, facts=facts)


def _learned(facts: InstanceFacts, event: DomainEvent) -> InstanceFacts:
    """The facts after `event`, in whatever phase it lands."""
    replace = msgspec.structs.replace
    match event:
        case InstanceUpdated():
            return _updated(facts, event)
        case ProvisioningRequested(operation_id=operation_id):
            return replace(facts, provisioning_ops=(*facts.provisioning_ops, operation_id))
        case ActionRequested(action="start" | "restart") if not facts.provisioned:
            # Starting a never-provisioned (failed) instance resumes its provisioning.
            return replace(facts, provisioning_ops=(*facts.provisioning_ops, event.operation_id))
        case InstanceProvisioned(active_color=color) | InstanceRedeployed(active_color=color):
            facts = replace(facts, active_color=color, stopped_on_purpose=False)
            return _concluded(facts, event.operation_id, Succeeded())
        case InstanceStarted() | InstanceRestarted() | InstanceStopped():
            facts = replace(facts, stopped_on_purpose=isinstance(event, InstanceStopped))
            return _concluded(facts, event.operation_id, Succeeded())
        case ProvisioningFailed() | ActionFailed() | RemovalAbandoned():
            return _concluded(facts, event.operation_id, FailedAt(event.step, event.message))
        case (
            AdminPasswordRotationRequested()
            | AdminPasswordRotated()
            | AdminPasswordRotationFailed()
        ):
            return _rotation(facts, event)
        case McpCredentialsIssued(login=login, api_key=api_key):
            issued = McpCredentials(login=login, api_key=api_key)
            facts = replace(facts, mcp_credentials=issued)
            return _concluded(facts, event.operation_id, Succeeded())
        case McpCredentialsFailed():
            return _concluded(facts, event.operation_id, FailedAt(event.step, event.message))
        case InstanceRemoved():
            return _concluded(facts, event.operation_id, Succeeded())
        case _:
            return facts


def _concluded(facts: InstanceFacts, operation_id: str, outcome: OperationOutcome) -> InstanceFacts:
    return msgspec.structs.replace(facts, outcomes={**facts.outcomes, operation_id: outcome})


def _while_removing(state: Removing | Abandoned | Removed, event: DomainEvent) -> InstanceState:
    match state, event:
        case _, InstanceRemoved() | InstanceRemovalForced():
            return Removed(state.facts)
        case Removing(), RemovalFailed(step=step, message=message):
            return Removing(state.facts, failure=f"{step}: {message}")
        case Removing(), RemovalAbandoned(step=step, message=message):
            return Abandoned(state.facts, failure=f"{step}: {message}")
        case Removing() | Abandoned(), RemovalRequested():
            return Removing(state.facts)
        case _:
            return state


def _rotation(
    facts: InstanceFacts,
    event: AdminPasswordRotationRequested | AdminPasswordRotated | AdminPasswordRotationFailed,
) -> InstanceFacts:
    """A rotation's new password becomes the admin's once the saga has set it in Odoo."""
    pending = dict(facts.rotations)
    match event:
        case AdminPasswordRotationRequested(operation_id=operation_id):
            pending[operation_id] = event.admin_user_password
            return msgspec.structs.replace(facts, rotations=pending)
        case AdminPasswordRotated(operation_id=operation_id):
            current = pending.pop(operation_id, facts.admin_user_password)
            facts = msgspec.structs.replace(facts, admin_user_password=current, rotations=pending)
            return _concluded(facts, operation_id, Succeeded())
        case AdminPasswordRotationFailed(operation_id=operation_id):
            pending.pop(operation_id, None)
            facts = msgspec.structs.replace(facts, rotations=pending)
            return _concluded(facts, operation_id, FailedAt(event.step, event.message))


def _created(event: InstanceCreated) -> Creating:
    return Creating(
        InstanceFacts(
            instance_id=event.instance_id,
            name=event.name,
            slug=event.slug,
            server_id=event.server_id,
            auto_subdomain=event.auto_subdomain,
            addons_path=event.addons_path,
            env_vars=event.env_vars,
            mcp_write_enabled=event.mcp_write_enabled,
            created=event,
            admin_user_password=event.admin_user_password,
        )
    )


def _updated(facts: InstanceFacts, event: InstanceUpdated) -> InstanceFacts:
    changes = {
        name: value for name in CHANGEABLE if (value := getattr(event, name)) is not msgspec.UNSET
    }
    return msgspec.structs.replace(facts, **changes)


fold = folder(initial_state(), evolve)
