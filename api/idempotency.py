"""Idempotency-Key: the same caller, key and request within 24 h replays the first response
and appends nothing; the same key with another request is refused (422).

Keys belong to one caller (organization and subject): another user's key is a new request
for them. A finished request keeps what re-presents its reply (status, odoofleet's own
headers, the written resource's stream and version), never the reply's body: a replay
reads the resource again through the same presentation as any read, so secrets are never at
rest here and a forgotten stream's secrets come back masked.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

import msgspec

from api.auth import Principal
from api.errors import FieldError, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidRequest
from events.pool import Pool

T = TypeVar("T")

_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")
_CLEANUP_EVERY: Final = 600.0
# The headers a reply is re-sent with: values odoofleet computed, none from the body.
KEPT_HEADERS: Final = frozenset({"ETag", "X-Position", "Location"})

# Claim the key: a new row, or take over an expired one, or one whose request died in flight
# (its process crashed or lost the database before it could record or release the key).
_CLAIM: Final = b"""
INSERT INTO idempotency_keys (org_id, subject, key, fingerprint) VALUES (%s, %s, %s, %s)
ON CONFLICT (org_id, subject, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, stream_id = NULL,
        version = NULL, created_at = now()
    WHERE idempotency_keys.created_at < now() - interval '24 hours'
       OR (idempotency_keys.status IS NULL
           AND idempotency_keys.created_at < now() - interval '1 minute')
RETURNING true
"""
_FIND: Final = b"""
SELECT fingerprint, status, headers, stream_id, version FROM idempotency_keys
WHERE org_id = %s AND subject = %s AND key = %s
"""
_RECORD: Final = b"""
UPDATE idempotency_keys SET status = %s, headers = %s, stream_id = %s, version = %s
WHERE org_id = %s AND subject = %s AND key = %s
"""
_RELEASE: Final = b"""
DELETE FROM idempotency_keys WHERE org_id = %s AND subject = %s AND key = %s AND status IS NULL
"""
_EXPIRE: Final = b"DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'"


class Written(msgspec.Struct, frozen=True):
    """The resource a write produced: its stream, at the version the write left it."""

    stream_id: str
    version: int


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """A write's response; `written` is what a replay reads again to re-present it."""

    status: int
    body: T
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    written: Written | None = None


def fingerprint(method: str, path: str, body: object) -> bytes:
    """The request's identity: method, path and the validated body (so key order and
    whitespace do not make two equal requests differ)."""
    canonical = msgspec.json.encode(body, order="sorted")
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).digest()


class WriteNotReplayable(TypeError):
    """An idempotent write returned a reply that names no written resource (a bug)."""


class Idempotency:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._next_cleanup = 0.0

    async def run(
        self,
        caller: Principal,
        key: str | None,
        request: bytes,
        action: Callable[[], Awaitable[Reply[T]]],
        present: Callable[[Written], Awaitable[T]],
    ) -> Reply[T]:
        """`action` performs the write; `present` shows a written resource as the reply's
        body, the way a read would, for a replay."""
        if key is None:
            return await action()
        if not _KEY.fullmatch(key):
            raise InvalidRequest(FieldError("Idempotency-Key", "1 to 255 printable characters"))
        owner = (caller.org_id, caller.user_id, key)
        if not await self._claim(owner, request):
            return await self._replay(owner, request, present)
        try:
            reply = await action()
            if reply.written is None:
                raise WriteNotReplayable("an idempotent write must name what it wrote")
        except BaseException:
            await self._release(owner)
            raise
        await self._record(owner, reply.status, reply.headers, reply.written)
        return reply

    async def _claim(self, owner: tuple[str, str, str], request: bytes) -> bool:
        async with self._pool.connection() as conn:
            if time.monotonic() > self._next_cleanup:
                self._next_cleanup = time.monotonic() + _CLEANUP_EVERY
                await conn.execute(_EXPIRE)
            cur = await conn.execute(_CLAIM, (*owner, request))
            return await cur.fetchone() is not None

    async def _replay(
        self,
        owner: tuple[str, str, str],
        request: bytes,
        present: Callable[[Written], Awaitable[T]],
    ) -> Reply[T]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_FIND, owner)
            row = await cur.fetchone()
        if row is not None and bytes(row[0]) != request:
            raise IdempotencyKeyReused
        if row is None or row[1] is None:
            raise IdempotencyKeyInFlight
        status, headers, stream_id, version = row[1:]
        written = Written(stream_id, version)
        body = await present(written)
        return Reply(status, body, dict(headers), replayed=True, written=written)

    async def _record(
        self, owner: tuple[str, str, str], status: int, headers: dict[str, str], written: Written
    ) -> None:
        kept = {name: value for name, value in headers.items() if name in KEPT_HEADERS}
        encoded = msgspec.json.encode(kept).decode()
        async with self._pool.connection() as conn:
            await conn.execute(
                _RECORD, (status, encoded, written.stream_id, written.version, *owner)
            )

    async def _release(self, owner: tuple[str, str, str]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_RELEASE, owner)
