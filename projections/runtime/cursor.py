"""Opaque keyset cursors: the sort key of the last row of a page, base64url-encoded JSON."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

import msgspec

from projections.runtime.errors import InvalidCursor

# A cursor comes back from the client, so it is checked as strictly as any input: an id
# with a NUL byte reached PostgreSQL and failed there (a 500, issue 13).
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")]


class Position(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Where a page ended: (created_at, id) of its last row, in list order."""

    created_at: Annotated[datetime, msgspec.Meta(tz=True)]
    id: _Id


def encode_cursor(position: Position) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=Position)
    except (binascii.Error, ValueError, msgspec.DecodeError) as e:
        raise InvalidCursor(f"malformed cursor {cursor[:40]!r}") from e
