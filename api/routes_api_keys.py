"""`/api/api-keys`: issue, list and revoke long-lived API keys (issue 17).

A key is shown once, at creation (`key`: `ofk_<prefix>_<secret>`); afterwards only its prefix.
It is accepted wherever a JWT is, with its own permissions — never more than its creator's —
and, when `instanceIds` is given, only for those instances.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Final, Literal, get_args

import msgspec
from litestar import Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody

from api.api_keys import ApiKeys
from api.auth import Principal, needs
from api.errors import FieldError, InvalidRequest, problem
from api.fields import Name
from api.services import Deps, Services
from api.web import AuthRequest, MinPosition, metadata_for, problems
from api.written import position_header
from commands import api_key
from commands.runner import Outcome, execute_command, folder
from events.api_key import api_key_stream
from projections.api_keys import ListedApiKey, key_prefix, list_api_keys
from projections.instances import get_instance

MANAGE: Final = needs("manage:api-keys")
_fold: Final = folder(api_key.initial_state(), api_key.evolve)

Permission = Literal[
    "view:instances",
    "manage:instances",
    "view:servers",
    "manage:servers",
    "view:audit",
    "manage:audit",
    "view:backups",
    "manage:backups",
    "view:webhooks",
    "manage:webhooks",
    "view:api-keys",
    "manage:api-keys",
]


class CreateApiKeyBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """`instanceIds`: limit the key to these instances of the organization (absent: all)."""

    name: Name
    permissions: Annotated[list[Permission], msgspec.Meta(min_length=1, max_length=20)]
    expires_at: datetime | None = None
    instance_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=100)] | None = (
        None
    )
    # MCP controls (issue 18, api/mcp): no write tools; the instances MCP may reach.
    mcp_read_only: bool = False
    mcp_instance_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=100)] | None = None


class ApiKey(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    name: str
    prefix: str
    permissions: list[str]
    instance_ids: list[str] | None
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    last_used_at: datetime | None


class CreatedApiKey(ApiKey, kw_only=True):
    """`key` is shown here only: it is not stored and cannot be shown again."""

    key: str


class ApiKeyList(msgspec.Struct, rename="camel", kw_only=True):
    api_keys: list[ApiKey]


@post(
    "/api-keys",
    operation_id="createApiKey",
    summary="Issue an API key",
    status_code=201,
    opt=MANAGE,
    responses=problems(400, 401, 403, 503),
    tags=["api-keys"],
)
async def create(
    request: AuthRequest, services: Deps, state: State, data: JSONBody[CreateApiKeyBody]
) -> Response[CreatedApiKey]:
    """The key is in the response once. It holds only permissions (and instances) its
    creator holds: asking for more is refused with 403."""
    principal = request.user
    now = datetime.now(UTC)
    expires_at = _utc(data.expires_at)
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest(FieldError("expiresAt", "must be in the future"))
    instance_ids = await _instances(services, principal, data.instance_ids)
    keys: ApiKeys = state.api_keys
    key_id = str(uuid.uuid4())
    issued = keys.hasher.issue(key_id)
    command = api_key.CreateApiKey(
        key_id=key_id,
        name=data.name,
        secret_hash=issued.secret_hash,
        permissions=frozenset(data.permissions),
        instance_ids=instance_ids,
        expires_at=expires_at,
        created_by=principal.user_id,
        # What the creator holds as api/auth.py judges it (implications included).
        creator_permissions=frozenset(p for p in get_args(Permission) if principal.may(p)),
        creator_instance_ids=principal.instance_ids,
        mcp_read_only=data.mcp_read_only or principal.mcp_read_only,
        mcp_instance_ids=None
        if data.mcp_instance_ids is None
        else frozenset(str(i) for i in data.mcp_instance_ids),
    )
    outcome = await _execute(services, request, key_id, command, now)
    body = CreatedApiKey(
        id=key_id,
        name=data.name,
        prefix=key_prefix(key_id),
        permissions=sorted(command.permissions),
        instance_ids=None if instance_ids is None else sorted(instance_ids),
        expires_at=expires_at,
        created_by=principal.user_id,
        created_at=now,
        last_used_at=None,
        key=issued.token,
    )
    headers = {"Location": f"/api/api-keys/{key_id}", **position_header(outcome.position)}
    return Response(body, status_code=201, headers=headers)


@get(
    "/api-keys",
    operation_id="listApiKeys",
    summary="List API keys",
    opt=MANAGE,
    responses=problems(401, 403, 503),
    tags=["api-keys"],
)
async def list_all(
    request: AuthRequest, services: Deps, min_position: MinPosition = None
) -> ApiKeyList:
    """The organization's keys not revoked, oldest first, by prefix (never the key)."""
    principal = request.user
    await services.reads.before_read(principal, min_position, ("api_keys",))
    found = await list_api_keys(services.pool, principal.org_id)
    return ApiKeyList(api_keys=[_shown(view) for view in found])


@delete(
    "/api-keys/{key_id:uuid}",
    operation_id="revokeApiKey",
    summary="Revoke an API key",
    status_code=204,
    opt=MANAGE,
    responses=problems(401, 403, 404, 503),
    tags=["api-keys"],
)
async def revoke(request: AuthRequest, services: Deps, key_id: FromPath[uuid.UUID]) -> None:
    """The key is refused from the next request on; revoking it again changes nothing."""
    command = api_key.RevokeApiKey(revoked_by=request.user.user_id)
    await _execute(services, request, str(key_id), command, datetime.now(UTC))


async def _execute(
    services: Services,
    request: AuthRequest,
    key_id: str,
    command: api_key.ApiKeyCommand,
    now: datetime,
) -> Outcome:
    try:
        outcome = await execute_command(
            services.store,
            api_key_stream(key_id),
            _fold,
            api_key.decide,
            command,
            now,
            metadata_for(request),
        )
    except (api_key.PermissionsExceeded, api_key.ScopeExceeded) as e:
        raise problem(403, "forbidden", str(e)) from e
    except api_key.ApiKeyNotFound as e:
        raise problem(404, "not-found", str(e)) from e
    services.reads.wrote(request.user, outcome.position)
    return outcome


async def _instances(
    services: Services, principal: Principal, given: list[uuid.UUID] | None
) -> frozenset[str] | None:
    """The instance ids a key is limited to, each an instance of the caller's organization."""
    if given is None:
        return None
    await services.reads.before_read(principal, None, ("instances",))
    for instance_id in given:
        view = await get_instance(services.pool, principal.org_id, str(instance_id))
        if view is None or not principal.reaches(view.id):
            raise InvalidRequest(FieldError("instanceIds", f"no instance {instance_id}"))
    return frozenset(str(i) for i in given)


def _shown(view: ListedApiKey) -> ApiKey:
    return msgspec.convert(view, ApiKey, from_attributes=True)


def _utc(moment: datetime | None) -> datetime | None:
    """A time without an offset is taken as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
