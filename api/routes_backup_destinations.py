"""Backup destinations of the organization: list, create (after a probe object was written,
read back and deleted: "test connection"), delete. Credentials are sealed in the
destination's stream and never returned."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Final

import msgspec
from litestar import Response, delete, get, post
from litestar.params import FromPath, JSONBody

from api.auth import needs
from api.errors import FieldError, InvalidRequest, problem
from api.services import Deps, Services
from api.web import AuthRequest, MinPosition, metadata_for, problems
from api.wire_backups import Destination, DestinationBody, DestinationList
from api.written import as_written, position_header
from commands import backup_destination
from commands.runner import execute_command
from events.backup import destination_stream
from projections.backups import DESTINATIONS, DestinationView, list_destinations
from workers.backups.destinations import DestinationError, probe
from workers.backups.opening import DestinationSpec, open_destination

MANAGE: Final = needs("manage:backups")
_TAGS: Final = ["backups"]
# Which body fields each kind needs, and which of them are secret (sealed, never shown).
_NEEDED: Final = {
    "local": ("path",),
    "sftp": ("host", "user", "path", "host_key"),
    "s3": ("bucket", "access_key_id", "secret_access_key"),
}
_SETTINGS: Final = {
    "local": ("path",),
    "sftp": ("host", "port", "user", "path", "host_key"),
    "s3": ("bucket", "region", "endpoint_url", "prefix", "access_key_id"),
}
_SECRETS: Final = {"local": (), "sftp": ("private_key", "password"), "s3": ("secret_access_key",)}


@get(
    "/backup-destinations",
    operation_id="listBackupDestinations",
    summary="List backup destinations",
    opt=MANAGE,
    responses=problems(401, 403, 503),
    tags=_TAGS,
)
async def list_all(
    request: AuthRequest, services: Deps, min_position: MinPosition = None
) -> DestinationList:
    principal = request.user
    await services.reads.before_read(principal, min_position, ("backup_destinations",))
    found = await list_destinations(services.pool, principal.org_id)
    return DestinationList(destinations=[_shown(view) for view in found])


@post(
    "/backup-destinations",
    operation_id="createBackupDestination",
    summary="Create a backup destination (tested first)",
    status_code=201,
    opt=MANAGE,
    responses=problems(400, 401, 403, 503),
    tags=_TAGS,
)
async def create(
    request: AuthRequest, services: Deps, data: JSONBody[DestinationBody]
) -> Response[Destination]:
    """An `sftp` or `s3` destination is tested by writing, reading back and deleting a probe
    object; if that fails the answer is 400 with the destination's own error. A `local`
    destination is a directory of each backed-up instance's server, tested by its first
    backup."""
    fields = msgspec.structs.asdict(data)
    missing = [name for name in _NEEDED[data.kind] if not fields.get(name)]
    if data.kind == "sftp" and not (data.private_key or data.password):
        missing.append("private_key")
    if missing:
        raise InvalidRequest(*(FieldError(_camel(name), "required") for name in missing))
    settings = {
        _camel(name): str(fields[name]) for name in _SETTINGS[data.kind] if fields.get(name)
    }
    credentials = {
        _camel(name): str(fields[name]) for name in _SECRETS[data.kind] if fields.get(name)
    }
    destination_id = str(uuid.uuid4())
    spec = DestinationSpec(
        destination_id=destination_id, kind=data.kind, settings=settings, credentials=credentials
    )
    if data.kind != "local":
        await _test_connection(services, spec)
    stream_id = destination_stream(destination_id)
    sealed = None
    if credentials:
        sealed = await services.vault.seal(stream_id, json.dumps(credentials))
    command = backup_destination.CreateDestination(
        destination_id=destination_id,
        name=data.name,
        kind=data.kind,
        settings=settings,
        credentials=sealed,
    )
    outcome = await execute_command(
        services.store, stream_id, backup_destination.fold,
        backup_destination.decide, command, datetime.now(UTC), metadata_for(request),
    )  # fmt: skip
    not_found = problem(404, "not-found", "backup destination not found")
    view = await as_written(services.store, DESTINATIONS, stream_id, request.user, not_found)
    location = f"/api/backup-destinations/{destination_id}"
    headers = {"Location": location, **position_header(outcome.position)}
    return Response(_shown(view), status_code=201, headers=headers)


@delete(
    "/backup-destinations/{destination_id:uuid}",
    operation_id="deleteBackupDestination",
    summary="Delete a backup destination",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 503),
    tags=_TAGS,
)
async def remove(request: AuthRequest, services: Deps, destination_id: FromPath[uuid.UUID]) -> None:
    """The backups stored there stay; their credentials are shredded with the destination."""
    stream_id = destination_stream(str(destination_id))
    try:
        await execute_command(
            services.store, stream_id, backup_destination.fold,
            backup_destination.decide, backup_destination.DeleteDestination(),
            datetime.now(UTC), metadata_for(request),
        )  # fmt: skip
    except backup_destination.DestinationNotFound as e:
        raise problem(404, "not-found", str(e)) from e


async def _test_connection(services: Services, spec: DestinationSpec) -> None:
    try:
        destination = await open_destination(
            spec, local_sftp=None, policy=services.server_addresses
        )
        try:
            await probe(destination)
        finally:
            await destination.close()
    except DestinationError as e:
        raise problem(
            400, "destination-unreachable", f"the destination failed its test: {e}"
        ) from e


def _shown(view: DestinationView) -> Destination:
    return msgspec.convert(view, Destination, from_attributes=True)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)
