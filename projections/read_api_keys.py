"""Reading an organization's API keys, with when each was last used."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from projections.api_keys import ApiKeyView
from projections.runtime.reader import Reader, fetch_text


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
