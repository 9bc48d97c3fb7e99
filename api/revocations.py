"""Revoked tokens: a deny-list of `jti` values in PostgreSQL (`odoofleet token revoke`),
read by each API process at most every few seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from psycopg import AsyncConnection

from events.pool import Pool

# How long a process trusts the list it read. Reading it for every request would add a
# round trip to each one; the list is small (only tokens that could still be valid: at
# most ODOOFLEET_JWT_MAX_LIFETIME old), so one query every few seconds keeps it current, and
# a revocation takes effect in every process within this many seconds (as a shredded key
# does, events/secrets.py).
REFRESH_SECONDS: Final = 5.0

_LIVE: Final = "SELECT jti FROM revoked_tokens WHERE expires_at > now()"
_PURGE: Final = "DELETE FROM revoked_tokens WHERE expires_at <= now()"
# A token minted with this id can be valid until at most now + the maximum lifetime: its
# iat is not in the future and exp - iat is at most the maximum (api/auth.py).
_REVOKE: Final = (
    "INSERT INTO revoked_tokens (jti, expires_at)"
    " VALUES (%s, now() + make_interval(secs => %s))"
    " ON CONFLICT (jti) DO UPDATE SET expires_at = greatest("
    "revoked_tokens.expires_at, EXCLUDED.expires_at)"
)


class Revocations:
    """This process's copy of the deny-list."""

    def __init__(self, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._refresh_seconds = refresh_seconds
        self._revoked: frozenset[str] = frozenset()
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def is_revoked(self, jti: str, pool: Pool) -> bool:
        if self._stale():
            async with self._lock:
                # One reader at a time; the others use what it read.
                if self._stale():
                    await self._read(pool)
        return jti in self._revoked

    def _stale(self) -> bool:
        return time.monotonic() - self._read_at >= self._refresh_seconds

    async def _read(self, pool: Pool) -> None:
        async with pool.connection() as conn:
            rows = await (await conn.execute(_LIVE)).fetchall()
        self._revoked = frozenset(row[0] for row in rows)
        self._read_at = time.monotonic()


async def revoke(conn: AsyncConnection[Any], jti: str, max_lifetime: float) -> None:
    """Put `jti` on the deny-list for as long as a token with it could be valid; drop the
    entries no token can need any more."""
    async with conn.transaction():
        await conn.execute(_PURGE)
        await conn.execute(_REVOKE, (jti, max_lifetime))
