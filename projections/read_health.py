"""Reading the latest health observation of an instance."""

from __future__ import annotations

from typing import Final

import msgspec

from projections.health import HealthView
from projections.reader import Reader, fetch_text

_GET: Final = b"SELECT to_json(h)::text FROM health h WHERE org_id = %s AND instance_id = %s"
_health: Final = msgspec.json.Decoder(HealthView)


async def get_health(conn: Reader, org_id: str, instance_id: str) -> HealthView | None:
    """None until the instance was first observed."""
    found = await fetch_text(conn, _GET, (org_id, instance_id))
    return None if found is None else _health.decode(found)
