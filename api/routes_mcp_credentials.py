"""Rotating the Odoo credentials MCP calls an instance with (docs/mcp.md, "Odoo credentials")."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from litestar import Response, post
from litestar.params import FromPath

from api.operation_accepted import operation_accepted
from api.routes_instances import MANAGE
from api.services import Deps
from api.web import WRITE_HEADERS, AuthRequest, metadata_for, problems
from api.wire_reads import Operation
from commands.instance import decide
from commands.instance_state import fold
from commands.mcp_credentials import RotateMcpCredentials
from commands.runner import execute_command
from events.instance import instance_stream


@post(
    "/instances/{instance_id:uuid}/mcp/rotate-credentials",
    operation_id="rotateInstanceMcpCredentials",
    summary="Issue new Odoo credentials for MCP on an instance",
    status_code=202,
    opt=MANAGE,
    responses=problems(401, 403, 404, 409, 503),
    response_headers=WRITE_HEADERS,
    tags=["instances", "mcp"],
)
async def rotate_credentials(
    request: AuthRequest, services: Deps, instance_id: FromPath[uuid.UUID]
) -> Response[Operation]:
    """Create (if missing) the Odoo user `odoofleet-mcp` on the running instance and give it a
    new API key, revoking its earlier ones, as an operation of type `mcp-credentials` (listed
    with the instance's operations). MCP's Odoo tools use the new key once the operation
    succeeds; until then the previous one holds. An instance provisioned before odoofleet
    issued MCP credentials gets its first ones this way. Only a `running` instance: otherwise
    409. Recorded in the audit trail."""
    operation_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    outcome = await execute_command(
        services.store,
        instance_stream(str(instance_id)),
        fold,
        decide,
        RotateMcpCredentials(operation_id=operation_id),
        now,
        metadata_for(request),
    )
    return operation_accepted(
        services,
        request.user,
        outcome,
        operation_id=operation_id,
        instance_id=str(instance_id),
        kind="mcp-credentials",
        requested_at=now,
    )
