"""Instance reads: the list, one instance (with time travel, and envVars revealed on request), its
health, health score, operations and event history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import msgspec
from litestar import Response, get
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, FromQuery, QueryParameter

from api import present
from api.auth import Forbidden, Principal, needs
from api.routes_instances import VIEW
from api.services import Deps, Services
from api.web import AuthRequest, MinPosition, etag, metadata_for, problems
from api.wire_instances import Instance, InstancePage, InstanceStatus
from api.wire_reads import EventList, Health, HealthScore, OperationList
from commands import change_instance
from commands.refusals import InstanceNotFound
from events.instance import instance_stream
from events.metadata import EventMetadata
from projections.health import get_health, get_health_score
from projections.instances import InstanceView, get_instance, list_instances
from projections.operations import list_operations
from projections.timetravel import instance_as_of

AsOf = Annotated[
    datetime | None,
    QueryParameter(name="asOf", description="RFC 3339 time: the instance as it was then"),
]
Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Page size")]
Reveal = Annotated[
    Literal["envVars"] | None,
    QueryParameter(
        description="`envVars`: show their values (needs manage:instances; recorded in the"
        " audit trail as `instance.secrets_revealed`). Without it they are masked."
    ),
]
Cursor = Annotated[str | None, QueryParameter(max_length=200, description="From `nextCursor`")]
_ERRORS: Final = problems(401, 403, 404, 503)
_metadata: Final = msgspec.json.Decoder(EventMetadata)


@get(
    "/instances",
    operation_id="listInstances",
    summary="List instances",
    opt=VIEW,
    responses=problems(400, 401, 403, 503),
    tags=["instances"],
)
async def list_all(
    request: AuthRequest,
    services: Deps,
    server_id: FromQuery[uuid.UUID | None] = None,
    status: FromQuery[InstanceStatus | None] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> InstancePage:
    """The organization's instances, newest first, a page at a time."""
    principal = request.user
    await services.reads.before_read(principal, min_position, ("instances",))
    views, next_cursor = await list_instances(
        services.pool,
        principal.org_id,
        server_id=None if server_id is None else str(server_id),
        status=status,
        limit=limit,
        cursor=cursor,
    )
    # An API key limited to some instances lists only those (a page may come out shorter).
    reached = [view for view in views if principal.reaches(view.id)]
    shown = [await present.instance(view, principal, services.vault) for view in reached]
    return InstancePage(instances=shown, next_cursor=next_cursor)


@get(
    "/instances/{instance_id:uuid}",
    operation_id="getInstance",
    summary="Get an instance",
    opt=VIEW,
    responses=problems(400, 401, 403, 404, 503),
    response_headers=[ResponseHeader(name="ETag", documentation_only=True)],
    tags=["instances"],
)
async def get_one(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    as_of: AsOf = None,
    min_position: MinPosition = None,
    reveal: Reveal = None,
) -> Response[Instance]:
    """One instance; `ETag` is its stream version. `asOf` shows it as it was then.
    envVars values are masked unless `reveal=envVars`."""
    principal = request.user
    if reveal is not None:
        await _record_reveal(request, services, str(instance_id))
    if as_of is not None:
        view = await instance_as_of(services.store, principal.org_id, str(instance_id), _utc(as_of))
    else:
        await services.reads.before_read(principal, min_position, ("instances",))
        view = await get_instance(services.pool, principal.org_id, str(instance_id))
    if view is None:
        raise InstanceNotFound
    shown = await present.instance(view, principal, services.vault, reveal=reveal is not None)
    headers = {"ETag": etag(view.version)}
    if reveal is not None:
        # Secret values must not linger in a shared or browser cache (RFC 9111 §5.2.2.5).
        headers["Cache-Control"] = "no-store"
    return Response(shown, headers=headers)


async def _record_reveal(request: AuthRequest, services: Services, instance_id: str) -> None:
    """Only a manage caller is shown envVars values, and only once that is recorded; the
    caller's read then waits for the record to be projected (read-your-writes)."""
    principal = request.user
    if not principal.may("manage:instances"):
        raise Forbidden("manage:instances")
    outcome = await change_instance.record_env_vars_revealed(
        services.store,
        instance_id,
        revealed_by=principal.user_id,
        now=datetime.now(UTC),
        metadata=metadata_for(request),
    )
    services.reads.wrote(principal, outcome.position)


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


def _utc(moment: datetime) -> datetime:
    """A time without an offset is taken as UTC (RFC 3339 requires one; be lenient)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
