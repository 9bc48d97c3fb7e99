"""The API key read model: what `GET /api/api-keys` lists (never a secret or its hash), how
events build it, and the read of it."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from events.api_key import ApiKeyCreated, ApiKeyRevoked
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, fetch_text


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


class ListedApiKey(ApiKeyView, frozen=True, kw_only=True):
    last_used_at: datetime | None


# Revoked keys are not listed: a DELETE takes a key away for good.
_LIST: Final = (
    b"SELECT coalesce(json_agg(k ORDER BY k.created_at, k.id), '[]')::text FROM ("
    b" SELECT a.*, u.last_used_at FROM api_keys a"
    b" LEFT JOIN api_key_usage u ON u.key_id = a.id"
    b" WHERE a.org_id = %s AND a.revoked_at IS NULL) k"
)

_keys: Final = msgspec.json.Decoder(list[ListedApiKey])


async def list_api_keys(conn: Reader, org_id: str) -> list[ListedApiKey]:
    """The organization's keys not revoked, oldest first."""
    return _keys.decode(await fetch_text(conn, _LIST, (org_id,)) or "[]")
