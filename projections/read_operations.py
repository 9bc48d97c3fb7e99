"""Reading the operations (saga runs and their steps) of an instance."""

from __future__ import annotations

from typing import Final

import msgspec

from projections.operations import OperationView
from projections.reader import Reader, fetch_text

_LIST: Final = (
    b"SELECT coalesce(json_agg(o ORDER BY o.started_at DESC, o.id DESC), '[]')::text"
    b" FROM operations o WHERE org_id = %s AND instance_id = %s"
)
_operations: Final = msgspec.json.Decoder(list[OperationView])


async def list_operations(conn: Reader, org_id: str, instance_id: str) -> list[OperationView]:
    """The instance's operations, newest first."""
    return _operations.decode(await fetch_text(conn, _LIST, (org_id, instance_id)) or "[]")
