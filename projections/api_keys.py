"""The API key read model: what `GET /api/api-keys` lists (never a secret or its hash)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from events.api_key import ApiKeyCreated, ApiKeyRevoked
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need


class ApiKeyView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    name: str
    prefix: str
    permissions: list[str]
    instance_ids: list[str] | None
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def key_prefix(key_id: str) -> str:
    """What a key starts with (`ofk_<prefix>_<secret>`): its id without dashes, so a key
    names the stream it is checked against."""
    return key_id.replace("-", "")


def created(_: ApiKeyView | None, e: ApiKeyCreated, env: Envelope) -> ApiKeyView:
    return ApiKeyView(
        id=e.key_id,
        org_id=env.meta.org_id,
        name=e.name,
        prefix=key_prefix(e.key_id),
        permissions=e.permissions,
        instance_ids=e.instance_ids,
        expires_at=e.expires_at,
        created_by=e.created_by,
        created_at=e.created_at,
        revoked_at=None,
        version=env.version,
    )


def revoked(row: ApiKeyView | None, e: ApiKeyRevoked, env: Envelope) -> ApiKeyView:
    return msgspec.structs.replace(need(row, env), revoked_at=e.revoked_at)


API_KEYS: Folder[ApiKeyView] = Folder(
    "apikey", ApiKeyView, {ApiKeyCreated: created, ApiKeyRevoked: revoked}
)
