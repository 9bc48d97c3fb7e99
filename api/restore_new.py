"""POST /api/backups/{id}/restore with `newInstance`: the instance is created as POST
/api/instances creates one (the same draft, the same create decider, so a taken slug or a
full server answers the same), with the backup's Odoo version and edition, and the restore
into it recorded first (commands/restore_into_new.py); the restore saga runs once the new
instance is provisioned."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
from litestar import Response

from api.auth import Principal
from api.drafts import instance_draft, slugs_for
from api.errors import FieldError, InvalidRequest, problem
from api.services import Services
from api.web import POSITION_HEADER, AuthRequest, metadata_for
from api.wire_backups import NewInstanceBody, RestoreAccepted
from api.wire_instances import CreateInstanceBody
from commands import backup, server_state
from commands.create_instance import Created, create_instance
from commands.instance_state import Absent
from commands.instance_state import fold as instance_fold
from commands.refusals import ServerNotUsable
from commands.restore_into_new import restore_into_new_instance
from commands.runner import folder, load
from events.instance import instance_stream
from events.server import server_stream

_SERVER_FIELD = "newInstance.serverId"
_server_fold = folder(server_state.initial_state(), server_state.evolve)


async def restore_into_new(
    request: AuthRequest,
    services: Services,
    backup_id: str,
    source_instance_id: str,
    body: NewInstanceBody,
    *,
    neutralize: bool,
) -> Response[RestoreAccepted]:
    principal = request.user
    await _server_of(services, principal, str(body.server_id))
    create_body = await _create_body(services, principal, source_instance_id, body)
    draft = instance_draft(create_body, services.settings)
    operation_id = str(uuid.uuid4())
    command = backup.RequestRestore(
        operation_id=operation_id,
        target_instance_id=draft.instance_id,
        neutralize=neutralize,
        new_instance=True,
    )
    now, metadata = datetime.now(UTC), metadata_for(request)

    async def create() -> Created:
        return await create_instance(
            services.store,
            services.vault,
            draft,
            slugs_for(create_body),
            host_ports=services.host_ports,
            now=now,
            metadata=metadata,
            locks=services.locks,
            ports=services.ports,
            legacy_labels=services.legacy_labels,
        )

    try:
        done = await restore_into_new_instance(
            services.store, backup_id, command, create, now=now, metadata=metadata
        )
    except backup.BackupNotFound as e:
        raise problem(404, "not-found", str(e)) from e
    except backup.BackupBusy as e:
        raise problem(409, "backup-busy", str(e)) from e
    except ServerNotUsable as e:
        raise InvalidRequest(FieldError(_SERVER_FIELD, e.reason)) from e
    services.reads.wrote(principal, done.created.position)
    accepted = RestoreAccepted(
        backup_id=backup_id, operation_id=operation_id, target_instance_id=draft.instance_id
    )
    headers = {"Location": f"/api/instances/{draft.instance_id}"}
    if done.created.position is not None:
        headers[POSITION_HEADER] = str(done.created.position)
    return Response(accepted, status_code=202, headers=headers)


async def _server_of(services: Services, principal: Principal, server_id: str) -> None:
    """A server that is not the caller's organization's is refused as the create refuses it
    (API.md: 400 naming the field; another organization's answers as an unknown one)."""
    loaded = await load(
        services.store, server_stream(server_id), _server_fold, org_id=principal.org_id
    )
    if isinstance(loaded.state, server_state.Absent | server_state.Deleted):
        raise problem(
            400,
            "invalid-request",
            "server not found",
            errors=[FieldError(_SERVER_FIELD, "not found")],
        )


async def _create_body(
    services: Services, principal: Principal, source_instance_id: str, body: NewInstanceBody
) -> CreateInstanceBody:
    """The create body: the client's choices, and the backed-up instance's Odoo version and
    edition (those the backup's manifest records)."""
    source = await load(
        services.store, instance_stream(source_instance_id), instance_fold,
        org_id=principal.org_id,
    )  # fmt: skip
    if isinstance(source.state, Absent):
        raise problem(404, "not-found", "backup not found")
    created = source.state.facts.created
    return CreateInstanceBody(
        **msgspec.structs.asdict(body),
        odoo_version=created.odoo_version,
        odoo_edition=created.odoo_edition,
    )
