"""Idempotency-Key: the same key and request within 24 h replays the first response and
appends nothing; the same key with another request is refused (422)."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

import msgspec

from api.errors import FieldError, IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidRequest
from events.pool import Pool

T = TypeVar("T")

_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")
_CLEANUP_EVERY: Final = 600.0

# Claim the key: a new row, or take over an expired one, or one whose request died in flight
# (its process crashed or lost the database before it could record or release the key).
_CLAIM: Final = b"""
INSERT INTO idempotency_keys (org_id, key, fingerprint) VALUES (%s, %s, %s)
ON CONFLICT (org_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, status = NULL, headers = NULL, body = NULL,
        created_at = now()
    WHERE idempotency_keys.created_at < now() - interval '24 hours'
       OR (idempotency_keys.status IS NULL
           AND idempotency_keys.created_at < now() - interval '1 minute')
RETURNING true
"""
_FIND: Final = b"""
SELECT fingerprint, status, headers, body FROM idempotency_keys WHERE org_id = %s AND key = %s
"""
_RECORD: Final = b"""
UPDATE idempotency_keys SET status = %s, headers = %s, body = %s WHERE org_id = %s AND key = %s
"""
_RELEASE: Final = b"DELETE FROM idempotency_keys WHERE org_id = %s AND key = %s AND status IS NULL"
_EXPIRE: Final = b"DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'"


@dataclass(frozen=True, slots=True)
class Reply(Generic[T]):
    """A write's response, in a form that can be stored and replayed."""

    status: int
    body: T
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


def fingerprint(method: str, path: str, body: object) -> bytes:
    """The request's identity: method, path and the validated body (so key order and
    whitespace do not make two equal requests differ)."""
    canonical = msgspec.json.encode(body, order="sorted")
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).digest()


class Idempotency:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._next_cleanup = 0.0

    async def run(
        self,
        org_id: str,
        key: str | None,
        request: bytes,
        body_type: type[T],
        action: Callable[[], Awaitable[Reply[T]]],
    ) -> Reply[T]:
        if key is None:
            return await action()
        if not _KEY.fullmatch(key):
            raise InvalidRequest(FieldError("Idempotency-Key", "1 to 255 printable characters"))
        if not await self._claim(org_id, key, request):
            return await self._replay(org_id, key, request, body_type)
        try:
            reply = await action()
        except BaseException:
            await self._release(org_id, key)
            raise
        await self._record(org_id, key, reply)
        return reply

    async def _claim(self, org_id: str, key: str, request: bytes) -> bool:
        async with self._pool.connection() as conn:
            if time.monotonic() > self._next_cleanup:
                self._next_cleanup = time.monotonic() + _CLEANUP_EVERY
                await conn.execute(_EXPIRE)
            cur = await conn.execute(_CLAIM, (org_id, key, request))
            return await cur.fetchone() is not None

    async def _replay(self, org_id: str, key: str, request: bytes, body_type: type[T]) -> Reply[T]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_FIND, (org_id, key))
            row = await cur.fetchone()
        if row is not None and bytes(row[0]) != request:
            raise IdempotencyKeyReused
        if row is None or row[1] is None:
            raise IdempotencyKeyInFlight
        body = msgspec.json.decode(bytes(row[3]), type=body_type)
        return Reply(row[1], body, dict(row[2]), replayed=True)

    async def _record(self, org_id: str, key: str, reply: Reply[T]) -> None:
        body = msgspec.json.encode(reply.body)
        headers = msgspec.json.encode(reply.headers).decode()
        async with self._pool.connection() as conn:
            await conn.execute(_RECORD, (reply.status, headers, body, org_id, key))

    async def _release(self, org_id: str, key: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_RELEASE, (org_id, key))
