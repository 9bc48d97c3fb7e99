"""Read-only views of one instance: health, health score, operations and its event history."""

from __future__ import annotations

import uuid
from typing import Final

import msgspec
from litestar import get
from litestar.params import FromPath

from api import present
from api.auth import Principal, needs
from api.routes_instances import VIEW
from api.services import Deps, Services
from api.web import AuthRequest, MinPosition, problems
from api.wire_reads import EventList, Health, HealthScore, OperationList
from commands.refusals import InstanceNotFound
from events.instance import instance_stream
from events.metadata import EventMetadata
from projections.queries import (
    InstanceView,
    get_health,
    get_health_score,
    get_instance,
    list_operations,
)

_ERRORS: Final = problems(401, 403, 404, 503)
_metadata: Final = msgspec.json.Decoder(EventMetadata)


@get(
    "/instances/{instance_id:uuid}/health",
    operation_id="getInstanceHealth",
    summary="Get the health of an instance",
    opt=VIEW,
    responses=_ERRORS,
    tags=["instances"],
)
async def health(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> Health:
    """The latest health observation (status `unknown` until the first one)."""
    view = await _instance(request.user, services, instance_id, min_position, "health")
    return present.health(await get_health(services.pool, view.org_id, view.id), view.id)


@get(
    "/instances/{instance_id:uuid}/health-score",
    operation_id="getInstanceHealthScore",
    summary="Get the health score of an instance",
    opt=VIEW,
    responses=_ERRORS,
    tags=["instances"],
)
async def health_score(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> HealthScore:
    """The health score (0 to 100, grade A to F) and every factor behind it: weight, score,
    raw value and why. Null, with no factors, until the instance is first observed."""
    view = await _instance(request.user, services, instance_id, min_position, "health")
    scored = await get_health_score(services.pool, view.org_id, view.id)
    return msgspec.convert(scored, HealthScore, from_attributes=True)


@get(
    "/instances/{instance_id:uuid}/operations",
    operation_id="listInstanceOperations",
    summary="List an instance's operations",
    opt=VIEW,
    responses=_ERRORS,
    tags=["instances"],
)
async def operations(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> OperationList:
    """The instance's operations (saga runs and their steps), newest first."""
    principal = request.user
    view = await _instance(principal, services, instance_id, min_position, "operations")
    found = await list_operations(services.pool, principal.org_id, view.id)
    return OperationList(operations=[present.operation(op) for op in found])


@get(
    "/instances/{instance_id:uuid}/events",
    operation_id="listInstanceEvents",
    summary="List an instance's events",
    opt=needs("view:audit"),
    responses=_ERRORS,
    tags=["instances"],
)
async def events(
    request: AuthRequest, services: Deps, instance_id: FromPath[uuid.UUID]
) -> EventList:
    """The instance's own history, from the event log (secrets masked)."""
    recorded = await services.store.read_stream(instance_stream(str(instance_id)))
    if not recorded or _metadata.decode(recorded[0].metadata).org_id != request.user.org_id:
        raise InstanceNotFound
    return EventList(events=[present.stored_event(event) for event in recorded])


async def _instance(
    principal: Principal,
    services: Services,
    instance_id: uuid.UUID,
    min_position: int | None,
    *also: str,
) -> InstanceView:
    await services.reads.before_read(principal, min_position, ("instances", *also))
    view = await get_instance(services.pool, principal.org_id, str(instance_id))
    if view is None:
        raise InstanceNotFound
    return view
