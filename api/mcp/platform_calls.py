"""The platform tools (`odoofleet_*`): the same reads and commands as the REST API, for the
same caller, with refusals as tool errors."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

import mcp_types as types
import msgspec

from api import present
from api.auth import Principal
from api.fields import AddonsPath, Name
from api.mcp.catalog import mcp_reaches
from api.mcp.results import fitted, refusal, success
from api.services import Services
from commands import change_instance
from events.instance import InstanceChanges
from events.metadata import EventMetadata
from projections.audit import AuditFilter, query_audit
from projections.health import get_health, get_health_score
from projections.instances import InstanceView, get_instance, list_instances
from projections.operations import list_operations

_Id = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F-]{36}$")]
_to_json: Final = msgspec.to_builtins


class _Args(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    pass


class ListInstances(_Args, frozen=True):
    server_id: _Id | None = None
    status: Annotated[str, msgspec.Meta(max_length=30)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 20
    cursor: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class OneInstance(_Args, frozen=True):
    instance_id: _Id


class QueryAudit(_Args, frozen=True):
    resource_type: Annotated[str, msgspec.Meta(max_length=30)] | None = None
    resource_id: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    action: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    page: Annotated[int, msgspec.Meta(ge=1)] = 1
    per_page: Annotated[int, msgspec.Meta(ge=1, le=50)] = 20


class ControlInstance(_Args, frozen=True):
    instance_id: _Id
    action: Literal["start", "stop", "restart"]


class UpdateInstance(_Args, frozen=True):
    instance_id: _Id
    name: Name | msgspec.UnsetType = msgspec.UNSET
    addons_path: AddonsPath | msgspec.UnsetType | None = msgspec.UNSET
    # Only off: an assistant never grants itself write access.
    mcp_write_enabled: Literal[False] | msgspec.UnsetType = msgspec.UNSET


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """What a platform tool works with: the caller, the services, and the event metadata
    its writes carry."""

    principal: Principal
    services: Services
    metadata: EventMetadata
    budget: int


class Done(msgspec.Struct, frozen=True):
    """A platform tool's result and the instance it concerned (for the audit trail)."""

    result: types.CallToolResult
    instance: InstanceView | None = None


async def _instance(call: Call, instance_id: str) -> InstanceView | None:
    if not mcp_reaches(call.principal, instance_id):
        return None
    return await get_instance(call.services.pool, call.principal.org_id, instance_id)


def _not_found(instance_id: str) -> Done:
    return Done(refusal(f"instance {instance_id} not found"))


async def list_all(call: Call, args: ListInstances) -> Done:
    views, cursor = await list_instances(
        call.services.pool,
        call.principal.org_id,
        server_id=args.server_id,
        status=args.status,
        limit=args.limit,
        cursor=args.cursor,
    )
    shown = [
        _to_json(await present.instance(view, call.principal, call.services.vault))
        for view in views
        if mcp_reaches(call.principal, view.id)
    ]
    kept, cut = fitted(shown, call.budget)
    return Done(success({"instances": kept, "nextCursor": cursor, "truncated": cut}))


async def get_one(call: Call, args: OneInstance) -> Done:
    view = await _instance(call, args.instance_id)
    if view is None:
        return _not_found(args.instance_id)
    shown = await present.instance(view, call.principal, call.services.vault)
    return Done(success(_to_json(shown)), view)


async def health(call: Call, args: OneInstance) -> Done:
    view = await _instance(call, args.instance_id)
    if view is None:
        return _not_found(args.instance_id)
    pool = call.services.pool
    observed = present.health(await get_health(pool, view.org_id, view.id), view.id)
    scored = await get_health_score(pool, view.org_id, view.id)
    body = {"health": _to_json(observed), "score": _to_json(scored)}
    return Done(success(body), view)


async def operations(call: Call, args: OneInstance) -> Done:
    view = await _instance(call, args.instance_id)
    if view is None:
        return _not_found(args.instance_id)
    found = await list_operations(call.services.pool, view.org_id, view.id)
    shown = [_to_json(present.operation(op)) for op in found]
    kept, cut = fitted(shown, call.budget)
    return Done(success({"operations": kept, "truncated": cut}), view)


async def audit(call: Call, args: QueryAudit) -> Done:
    search = AuditFilter(
        resource_type=args.resource_type, resource_id=args.resource_id, action=args.action
    )
    found, total = await query_audit(
        call.services.pool, call.principal.org_id, search, args.page, args.per_page
    )
    items = [_to_json(present.audit_item(entry)) for entry in found]
    kept, cut = fitted(items, call.budget)
    return Done(success({"items": kept, "page": args.page, "total": total, "truncated": cut}))


async def _writable(call: Call, instance_id: str) -> InstanceView | Done:
    """The instance, if MCP may change it; otherwise the refusal to answer with."""
    view = await _instance(call, instance_id)
    if view is None:
        return _not_found(instance_id)
    if not view.mcp_write_enabled:
        return _write_disabled(view)
    return view


def _write_disabled(view: InstanceView) -> Done:
    return Done(
        refusal(
            f"MCP write access is disabled for instance {view.slug} ({view.id}): an operator"
            ' can enable it with PATCH /api/instances/{id} {"mcpWriteEnabled": true}'
        ),
        view,
    )


async def control(call: Call, args: ControlInstance) -> Done:
    view = await _writable(call, args.instance_id)
    if isinstance(view, Done):
        return view
    outcome = await change_instance.control_instance(
        call.services.store,
        view.id,
        args.action,
        operation_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
        metadata=call.metadata,
    )
    call.services.reads.wrote(call.principal, outcome.position)
    return Done(success({"instanceId": view.id, "action": args.action, "accepted": True}), view)


async def update(call: Call, args: UpdateInstance) -> Done:
    view = await _writable(call, args.instance_id)
    if isinstance(view, Done):
        return view
    changes = InstanceChanges[str](
        name=args.name, addons_path=args.addons_path, mcp_write_enabled=args.mcp_write_enabled
    )
    if all(v is msgspec.UNSET for v in msgspec.structs.astuple(changes)):
        return Done(refusal("give at least one field to change"), view)
    outcome = await change_instance.update_instance(
        call.services.store,
        call.services.vault,
        view.id,
        changes,
        operation_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
        metadata=call.metadata,
    )
    call.services.reads.wrote(call.principal, outcome.position)
    return Done(success({"instanceId": view.id, "version": outcome.version}), view)


Handler = Callable[[Call, Any], Awaitable[Done]]
PLATFORM: Final[dict[str, tuple[type[_Args], Handler]]] = {
    "odoofleet_list_instances": (ListInstances, list_all),
    "odoofleet_get_instance": (OneInstance, get_one),
    "odoofleet_get_health": (OneInstance, health),
    "odoofleet_list_operations": (OneInstance, operations),
    "odoofleet_query_audit": (QueryAudit, audit),
    "odoofleet_control_instance": (ControlInstance, control),
    "odoofleet_update_instance": (UpdateInstance, update),
}
