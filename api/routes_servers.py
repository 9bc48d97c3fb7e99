"""Server endpoints: list, register, get, delete, validate."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Final

import msgspec
from litestar import Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, JSONBody

from api import present, replays
from api.auth import needs
from api.drafts import server_draft
from api.errors import FieldError, InvalidRequest, Unavailable
from api.idempotency import Reply, Written, fingerprint
from api.server_address import refuse_internal_address
from api.server_quota import refuse_over_quota
from api.services import Deps, Services
from api.web import (
    POSITION_HEADER,
    AuthRequest,
    IdempotencyKey,
    MinPosition,
    metadata_for,
    position_of,
    problems,
    respond,
)
from api.wire_servers import CreateServerBody, Server, ServerList
from api.written import as_written, position_header
from commands import server_commands
from commands.refusals import ServerNotFound
from commands.server_commands import ServerDraft
from events.server import server_stream
from projections.servers import SERVERS, count_live_instances_on_server, get_server, list_servers
from projections.waiting import wait_for_position

VIEW: Final = needs("view:servers")
MANAGE: Final = needs("manage:servers")
_POSITION: Final = [ResponseHeader(name=POSITION_HEADER, documentation_only=True)]


@get(
    "/servers",
    operation_id="listServers",
    summary="List servers",
    opt=VIEW,
    responses=problems(401, 403, 503),
    tags=["servers"],
)
async def list_all(
    request: AuthRequest, services: Deps, min_position: MinPosition = None
) -> ServerList:
    """The organization's servers, oldest first."""
    principal = request.user
    await services.reads.before_read(principal, min_position, ("servers",))
    found = await list_servers(services.pool, principal.org_id)
    return ServerList(servers=[present.server(view) for view in found])


@post(
    "/servers",
    operation_id="createServer",
    summary="Register a server",
    status_code=201,
    opt=MANAGE,
    responses=problems(400, 401, 403, 409, 413, 422, 503),
    response_headers=[*_POSITION, ResponseHeader(name="Location", documentation_only=True)],
    tags=["servers"],
)
async def register(
    request: AuthRequest,
    services: Deps,
    data: JSONBody[CreateServerBody],
    idempotency_key: IdempotencyKey = None,
) -> Response[Server]:
    """Register a server (status `pending`); a validation saga connects to it. Its private
    key or password is sealed and never returned. Its host may not be, or resolve to, a
    loopback, link-local, cloud-metadata or control-plane address (400 naming `host`), and
    an organization has at most ODOOFLEET_MAX_SERVERS_PER_ORG servers (409). `publicIpv4` /
    `publicIpv6` (where custom domains must point) are kept when given (400 naming the field
    unless an address of that family); otherwise the validation detects them."""
    principal = request.user

    async def act() -> Reply[Server]:
        draft = _with_public_addresses(server_draft(data), data)
        await refuse_internal_address(services.server_addresses, draft.host, draft.port)
        # Counted on the read model, caught up with this caller's own registrations.
        await services.reads.before_read(principal, None, ("servers",))
        await refuse_over_quota(
            services.pool, principal.org_id, services.settings.max_servers_per_org
        )
        outcome = await server_commands.register_server(
            services.store,
            services.vault,
            draft,
            now=datetime.now(UTC),
            metadata=metadata_for(request),
        )
        stream_id = server_stream(draft.server_id)
        view = await as_written(services.store, SERVERS, stream_id, principal, ServerNotFound())
        location = f"/api/servers/{draft.server_id}"
        headers = {"Location": location, **position_header(outcome.position)}
        written = Written(stream_id, outcome.version)
        return Reply(201, present.server(view), headers, written=written)

    key = fingerprint("POST", request.url.path, data)
    replay = partial(replays.server, services, principal)
    reply = await services.idempotency.run(principal, idempotency_key, key, act, replay)
    services.reads.wrote(principal, position_of(reply))
    return respond(reply)


@get(
    "/servers/{server_id:uuid}",
    operation_id="getServer",
    summary="Get a server",
    opt=VIEW,
    responses=problems(401, 403, 404, 503),
    tags=["servers"],
)
async def get_one(
    request: AuthRequest,
    services: Deps,
    server_id: FromPath[uuid.UUID],
    min_position: MinPosition = None,
) -> Server:
    principal = request.user
    await services.reads.before_read(principal, min_position, ("servers",))
    view = await get_server(services.pool, principal.org_id, str(server_id))
    if view is None:
        raise ServerNotFound
    return present.server(view)


@delete(
    "/servers/{server_id:uuid}",
    operation_id="deleteServer",
    summary="Delete a server",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 409, 503),
    response_headers=_POSITION,
    tags=["servers"],
)
async def remove(
    request: AuthRequest, services: Deps, server_id: FromPath[uuid.UUID]
) -> Response[None]:
    """Delete a server that hosts no instance any more (409 while one lives on it)."""
    principal = request.user
    # Count on a read model that has caught up with the whole log, so an instance created
    # just before (by anyone) is counted: up to the newest committed event, even one that an
    # older open transaction still hides from the projections.
    head = await services.store.head(readable=False)
    if head.position and not await wait_for_position(services.pool, head.position):
        raise Unavailable("the instances read model is behind the log; retry")
    live = await count_live_instances_on_server(services.pool, principal.org_id, str(server_id))
    outcome = await server_commands.delete_server(
        services.store,
        str(server_id),
        live_instances=live,
        now=datetime.now(UTC),
        metadata=metadata_for(request),
    )
    return _accepted(services, request, outcome.position)


@post(
    "/servers/{server_id:uuid}/validate",
    operation_id="validateServer",
    summary="Validate a server again",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 429, 503),
    response_headers=_POSITION,
    tags=["servers"],
)
async def validate(
    request: AuthRequest, services: Deps, server_id: FromPath[uuid.UUID]
) -> Response[None]:
    """Run the validation again (connect, pin or check the host key, check Docker); at most
    ODOOFLEET_SERVER_VALIDATIONS_PER_MINUTE per organization (429 with Retry-After)."""
    services.validations.take(request.user.org_id, "server validations")
    outcome = await server_commands.validate_server(
        services.store,
        str(server_id),
        operation_id=str(uuid.uuid4()),
        now=datetime.now(UTC),
        metadata=metadata_for(request),
    )
    return _accepted(services, request, outcome.position)


def _accepted(services: Services, request: AuthRequest, position: int | None) -> Response[None]:
    services.reads.wrote(request.user, position)
    return respond(Reply(202, None, position_header(position)))


def _with_public_addresses(draft: ServerDraft, body: CreateServerBody) -> ServerDraft:
    """The registration with its given public addresses, each checked to be an address of
    its field's family and stored in its canonical form (`2001:DB8:0::7` → `2001:db8::7`)."""
    ipv4 = _address("publicIpv4", body.public_ipv4, ipaddress.IPv4Address)
    ipv6 = _address("publicIpv6", body.public_ipv6, ipaddress.IPv6Address)
    return msgspec.structs.replace(draft, public_ipv4=ipv4, public_ipv6=ipv6)


def _address(
    field: str,
    given: str | None,
    family: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address],
) -> str | None:
    if given is None:
        return None
    try:
        return str(family(given))
    except ValueError as e:
        kind = "IPv4" if family is ipaddress.IPv4Address else "IPv6"
        raise InvalidRequest(FieldError(field, f"not an {kind} address: {given!r}")) from e
