"""Instance writes: create, update, delete (also forced), control."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Final

import msgspec
from litestar import Response, delete, patch, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from api import present, replays
from api.auth import Principal, needs
from api.drafts import instance_changes, instance_draft, slugs_for
from api.idempotency import Reply, Written, fingerprint
from api.services import Deps, Services
from api.web import (
    WRITE_HEADERS,
    AuthRequest,
    IdempotencyKey,
    IfMatch,
    expected_version,
    metadata_for,
    position_of,
    problems,
    respond,
    write_headers,
)
from api.wire_instances import (
    ControlBody,
    CreateInstanceBody,
    Instance,
    UpdateInstanceBody,
)
from commands import change_instance
from commands.create_instance import Created, create_instance
from commands.force_removal import force_remove_instance
from commands.refusals import InstanceNotFound
from commands.runner import Outcome
from events.instance import instance_stream
from projections.instances import BACKUP_FIELDS, HEALTH_FIELDS, INSTANCES, get_instance
from projections.runtime.fold import fold

VIEW: Final = needs("view:instances")
MANAGE: Final = needs("manage:instances")
# The fields of a write's answer taken from the read models (`_written`).
_JOINED: Final = (*HEALTH_FIELDS, *BACKUP_FIELDS)

FinalBackup = Annotated[
    bool,
    QueryParameter(
        name="finalBackup",
        description="false: remove without the final backup (docs/backups.md)",
    ),
]
Force = Annotated[
    bool,
    QueryParameter(description="End a removal whose teardown failed (see docs/instances.md)"),
]


@post(
    "/instances",
    operation_id="createInstance",
    summary="Create an instance",
    status_code=202,
    opt=MANAGE,
    responses=problems(400, 401, 403, 409, 413, 422, 503),
    response_headers=[*WRITE_HEADERS, ResponseHeader(name="Location", documentation_only=True)],
    tags=["instances"],
)
async def create(
    request: AuthRequest,
    services: Deps,
    data: JSONBody[CreateInstanceBody],
    idempotency_key: IdempotencyKey = None,
) -> Response[Instance]:
    """Create an instance (status `creating`); provisioning starts in the background."""
    principal = request.user

    async def act() -> Reply[Instance]:
        draft = instance_draft(data, services.settings)
        outcome = await create_instance(
            services.store,
            services.vault,
            draft,
            slugs_for(data),
            host_ports=services.host_ports,
            now=datetime.now(UTC),
            metadata=metadata_for(request),
            locks=services.locks,
            ports=services.ports,
            legacy_labels=services.legacy_labels,
        )
        location = f"/api/instances/{draft.instance_id}"
        return await _created(services, principal, draft.instance_id, outcome, location)

    key = fingerprint("POST", request.url.path, data)
    return _sent(
        services,
        principal,
        await services.idempotency.run(
            principal, idempotency_key, key, act, partial(replays.instance, services, principal)
        ),
    )


@patch(
    "/instances/{instance_id:uuid}",
    operation_id="updateInstance",
    summary="Update an instance",
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 409, 412, 413, 503),
    response_headers=WRITE_HEADERS,
    tags=["instances"],
)
async def update(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    data: JSONBody[UpdateInstanceBody],
    if_match: IfMatch = None,
) -> Response[Instance]:
    """Change the name, addons path, env vars (the whole set) or MCP write access; honours
    If-Match. A change to nothing records nothing. A new addons path or new env vars reach
    the server: on an instance that serves (or is being created, started or restarted) by a
    blue/green redeploy, an operation of type `redeploy`; otherwise when it next starts."""
    principal = request.user
    write = change_instance.update_instance(
        services.store,
        services.vault,
        str(instance_id),
        instance_changes(data),
        operation_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
        metadata=metadata_for(request),
        if_match=expected_version(if_match),
        states=services.instance_states,
    )
    reply = await _written(services, principal, str(instance_id), write)
    return _sent(services, principal, Reply(200, reply.body, reply.headers))


@delete(
    "/instances/{instance_id:uuid}",
    operation_id="deleteInstance",
    summary="Delete an instance",
    status_code=202,
    opt=MANAGE,
    responses={
        **problems(400, 401, 403, 404, 409, 503),
        204: ResponseSpec(None, description="With force=true: the instance is removed"),
    },
    response_headers=WRITE_HEADERS,
    tags=["instances"],
)
async def remove(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    force: Force = False,
    final_backup: FinalBackup = True,
) -> Response[Instance]:
    """Remove the instance (status `removing`); while creating, provisioning is cancelled.
    Repeating it while it is being removed changes nothing. Once it is torn down, its secrets
    (env var values, passwords) are crypto-shredded; its history stays readable, masked.

    `force=true` ends a removal whose teardown failed (status `removing` with a failure in
    `statusMessage`, or `failed` after the retries): the instance is recorded removed (204),
    its slug, host name and host ports are freed and its secrets shredded at once, whatever
    is left on the server. Without a failed removal it is a 409."""
    principal = request.user
    if force:
        return await _forced(request, services, str(instance_id))
    write = change_instance.delete_instance(
        services.store,
        str(instance_id),
        operation_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
        metadata=metadata_for(request),
        final_backup=final_backup,
        states=services.instance_states,
    )
    return _sent(services, principal, await _written(services, principal, str(instance_id), write))


async def _forced(request: AuthRequest, services: Services, instance_id: str) -> Response[Any]:
    outcome = await force_remove_instance(
        services.store,
        services.vault,
        instance_id,
        now=datetime.now(UTC),
        metadata=metadata_for(request),
    )
    services.reads.wrote(request.user, outcome.position)
    return Response(None, status_code=204, headers=write_headers(outcome.version, outcome.position))


@post(
    "/instances/{instance_id:uuid}/control",
    operation_id="controlInstance",
    summary="Start, stop or restart an instance",
    status_code=202,
    opt=MANAGE,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    response_headers=WRITE_HEADERS,
    tags=["instances"],
)
async def control(
    request: AuthRequest,
    services: Deps,
    instance_id: FromPath[uuid.UUID],
    data: JSONBody[ControlBody],
    idempotency_key: IdempotencyKey = None,
) -> Response[Instance]:
    """Start (from stopped or failed), stop (from running) or restart (from running or
    failed); any other combination is a 409."""
    principal = request.user

    async def act() -> Reply[Instance]:
        write = change_instance.control_instance(
            services.store,
            str(instance_id),
            data.action,
            operation_id=str(uuid.uuid4()),
            now=datetime.now(UTC),
            metadata=metadata_for(request),
            states=services.instance_states,
        )
        return await _written(services, principal, str(instance_id), write)

    key = fingerprint("POST", request.url.path, data)
    return _sent(
        services,
        principal,
        await services.idempotency.run(
            principal, idempotency_key, key, act, partial(replays.instance, services, principal)
        ),
    )


async def _written(
    services: Services,
    principal: Principal,
    instance_id: str,
    write: Coroutine[Any, Any, Outcome],
) -> Reply[Instance]:
    """Runs `write` and answers with the instance right after it: folded from the events the
    write decided on and stored (exact, not waiting for the read model; reads wait for it
    instead, see consistency.py), nothing read back. Its health fields, which no instance
    event carries, are the read model's as a read now shows them: read while the write runs
    (a write changes none of them), on a connection of their own."""
    health = asyncio.create_task(get_instance(services.pool, principal.org_id, instance_id))
    try:
        outcome = await write
    except BaseException:
        # The health read's connection goes back to the pool, and its error is not left
        # unretrieved, before the write's error is answered.
        await asyncio.gather(health, return_exceptions=True)
        raise
    stored = await health
    stream_id = instance_stream(instance_id)
    view = await services.written_instances.after(stream_id, outcome)
    if view is None or view.org_id != principal.org_id:
        raise InstanceNotFound
    if stored is not None:
        view = msgspec.structs.replace(view, **{name: getattr(stored, name) for name in _JOINED})
    shown = await present.instance(view, principal, services.vault)
    headers = write_headers(view.version, outcome.position)
    return Reply(202, shown, headers, written=Written(stream_id, view.version))


async def _created(
    services: Services, principal: Principal, instance_id: str, outcome: Created, location: str
) -> Reply[Instance]:
    """The new instance, folded from the events the create stored (its whole stream), with no
    health fields: nothing has observed an instance that did not exist a moment ago."""
    view = fold(INSTANCES, outcome.recorded, services.store.registry)
    if view is None:
        raise InstanceNotFound
    shown = await present.instance(view, principal, services.vault)
    headers = write_headers(view.version, outcome.position, Location=location)
    return Reply(202, shown, headers, written=Written(instance_stream(instance_id), view.version))


def _sent(services: Services, principal: Principal, reply: Reply[Instance]) -> Response[Instance]:
    services.reads.wrote(principal, position_of(reply))
    return respond(reply)
