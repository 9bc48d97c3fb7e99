"""The Odoo admin user's credentials of an instance: reveal (audited) and rotate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from litestar import Response, get, post
from litestar.params import FromPath

from api.drafts import admin_user_password
from api.operation_accepted import operation_accepted
from api.routes_instances import MANAGE
from api.services import Deps
from api.web import WRITE_HEADERS, AuthRequest, metadata_for, problems
from api.wire_instances import AdminCredentials
from api.wire_reads import Operation
from commands.admin_credentials import reveal_admin_credentials, rotate_admin_password

# A password must not linger in a shared or browser cache (RFC 9111 §5.2.2.5).
_NO_STORE: Final = {"Cache-Control": "no-store"}


@get(
    "/instances/{instance_id:uuid}/admin-credentials",
    operation_id="getInstanceAdminCredentials",
    summary="Reveal the admin credentials of an instance",
    opt=MANAGE,
    responses=problems(401, 403, 404, 409, 503),
    tags=["instances"],
)
async def reveal(
    request: AuthRequest, services: Deps, instance_id: FromPath[uuid.UUID]
) -> Response[AdminCredentials]:
    """The login and current password of the Odoo admin user, set by odoofleet when the
    database was created (after a rotation completes: the new one). Every call is recorded in
    the audit trail as `instance.credentials_revealed`. 409 while the instance is being
    removed, once its secrets are erased, or for an instance created before odoofleet set
    this password (rotate to set one)."""
    revealed, outcome = await reveal_admin_credentials(
        services.store,
        services.vault,
        str(instance_id),
        revealed_by=request.user.user_id,
        now=datetime.now(UTC),
        metadata=metadata_for(request),
    )
    # The caller's next read (of the audit trail, say) waits for the reveal to be projected.
    services.reads.wrote(request.user, outcome.position)
    shown = AdminCredentials(login=revealed.login, password=revealed.password)
    return Response(shown, headers=_NO_STORE)


@post(
    "/instances/{instance_id:uuid}/admin-credentials/rotate",
    operation_id="rotateInstanceAdminCredentials",
    summary="Rotate the admin password of an instance",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 409, 503),
    response_headers=WRITE_HEADERS,
    tags=["instances"],
)
async def rotate(
    request: AuthRequest, services: Deps, instance_id: FromPath[uuid.UUID]
) -> Response[Operation]:
    """Generate a new password for the Odoo admin user and set it on the running instance,
    as an operation of type `rotate-admin-password` (listed with the instance's operations).
    The current password stays valid, and is what a reveal returns, until the operation
    succeeds. Only a `running` instance: otherwise 409."""
    operation_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    outcome = await rotate_admin_password(
        services.store,
        services.vault,
        str(instance_id),
        admin_user_password(),
        operation_id=operation_id,
        now=now,
        metadata=metadata_for(request),
    )
    return operation_accepted(
        services,
        request.user,
        outcome,
        operation_id=operation_id,
        instance_id=str(instance_id),
        kind="rotate-admin-password",
        requested_at=now,
    )
