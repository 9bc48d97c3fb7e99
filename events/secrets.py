"""Field-level encryption of secret values with per-stream data keys (crypto-shredding).

Each stream that holds a secret gets a random 256-bit data key, stored wrapped (AES-GCM) by
the master key from ODOOFLEET_SECRET_KEY. Secret fields are stored as `Sealed` values, never
as plaintext. `forget(stream_id)` deletes the data key: the stream's secrets become unreadable
for good, and readers get MASK instead of failing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from typing import Any, Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

MASK: Final = "********"
_PREFIX: Final = "v1:"
# Unwrapped keys are kept this long, so a key shredded by another process stops working here
# within seconds, not at the next restart.
_KEY_CACHE_SECONDS: Final = 5.0
_KEY_CACHE_SIZE: Final = 4096


_GET_KEY: Final = "SELECT wrapped_key FROM stream_keys WHERE stream_id = %s"
# One round trip: insert a new key unless the stream has one or was forgotten, then return
# whichever key the stream has (none when forgotten).
_CREATE_OR_GET_KEY: Final = (
    "WITH p AS (SELECT %s::text AS sid, %s::bytea AS wrapped),"
    " created AS (INSERT INTO stream_keys (stream_id, wrapped_key)"
    " SELECT sid, wrapped FROM p"
    " WHERE NOT EXISTS (SELECT 1 FROM forgotten_streams f, p WHERE f.stream_id = p.sid)"
    " ON CONFLICT DO NOTHING RETURNING wrapped_key)"
    " SELECT wrapped_key FROM created"
    " UNION ALL SELECT k.wrapped_key FROM stream_keys k, p WHERE k.stream_id = p.sid"
    " LIMIT 1"
)


class Sealed(msgspec.Struct, frozen=True):
    """A secret value as stored: `v1:` + base64(nonce || ciphertext+tag)."""

    sealed: str


class SecretKeyMissing(RuntimeError):
    """ODOOFLEET_SECRET_KEY is not set, so secrets cannot be sealed or opened."""


def master_key_from(secret: str) -> bytes:
    """Derive the 256-bit master key: base64 of 32 bytes is used as is, anything else hashed."""
    if not secret:
        raise SecretKeyMissing("ODOOFLEET_SECRET_KEY is not set; it is needed for secrets")
    try:
        raw = base64.b64decode(secret, validate=True)
    except ValueError:
        raw = b""
    if len(raw) == 32:
        return raw
    return hashlib.sha256(b"odoofleet-master-key:" + secret.encode()).digest()


def _encrypt(cipher: AESGCM, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + cipher.encrypt(nonce, plaintext, aad)).decode()


def _decrypt(cipher: AESGCM, token: str, aad: bytes) -> bytes:
    blob = base64.b64decode(token)
    return cipher.decrypt(blob[:12], blob[12:], aad)


async def _create_or_get_key(
    conn: AsyncConnection[Any], stream_id: str, wrapped: bytes
) -> tuple[Any, ...] | None:
    """Store a new data key, or find the one stored before.

    The commit does not wait for its WAL flush: whatever is sealed with the key is appended
    afterwards by a commit that does wait, and a WAL flush covers every record before it. So
    the key is durable whenever something that needs it is; lost in a crash, it was unused.
    """
    async with conn.pipeline(), conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit TO off")
        cur = await conn.execute(_CREATE_OR_GET_KEY, (stream_id, wrapped))
        return await cur.fetchone()


class Vault:
    """Seals and opens secret values of a stream; caches unwrapped data keys briefly, as
    ready ciphers (setting up a key costs more than sealing or opening a short value)."""

    def __init__(self, pool: AsyncConnectionPool[Any], master_secret: str) -> None:
        self._pool = pool
        self._master = AESGCM(master_key_from(master_secret))
        self._keys: dict[str, tuple[float, AESGCM]] = {}

    async def seal(self, stream_id: str, plaintext: str) -> Sealed:
        key = await self._data_key(stream_id, create=True)
        assert key is not None
        return Sealed(_PREFIX + _encrypt(key, plaintext.encode(), stream_id.encode()))

    async def seal_all(self, stream_id: str, values: dict[str, str]) -> dict[str, Sealed]:
        return {name: await self.seal(stream_id, value) for name, value in values.items()}

    async def open(self, stream_id: str, value: Sealed) -> str:
        """The plaintext, or MASK when the stream was forgotten or the value cannot be read."""
        key = await self._data_key(stream_id, create=False)
        if key is None or not value.sealed.startswith(_PREFIX):
            return MASK
        try:
            return _decrypt(key, value.sealed[len(_PREFIX) :], stream_id.encode()).decode()
        except (InvalidTag, ValueError):
            return MASK

    async def open_all(self, stream_id: str, values: dict[str, Sealed]) -> dict[str, str]:
        return {name: await self.open(stream_id, value) for name, value in values.items()}

    async def forget(self, stream_id: str) -> bool:
        """Crypto-shred: delete the stream's data key. True if there was one."""
        self._keys.pop(stream_id, None)
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute("DELETE FROM stream_keys WHERE stream_id = %s", (stream_id,))
            await conn.execute(
                "INSERT INTO forgotten_streams (stream_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (stream_id,),
            )
            # The API's idempotency keys that replay a write to this stream go with its
            # secrets: nothing kept for the stream outlives them (api/idempotency.py).
            await conn.execute("DELETE FROM idempotency_keys WHERE stream_id = %s", (stream_id,))
            return bool(cur.rowcount > 0)

    async def _data_key(self, stream_id: str, *, create: bool) -> AESGCM | None:
        cached = self._keys.get(stream_id)
        if cached is not None and time.monotonic() - cached[0] < _KEY_CACHE_SECONDS:
            return cached[1]
        async with self._pool.connection() as conn:
            row = None
            if create:
                row = await _create_or_get_key(conn, stream_id, self._wrap(stream_id))
            if row is None:
                # Also after a create that lost a race: the winner's key is committed by now,
                # but was invisible to the statement's snapshot.
                cur = await conn.execute(_GET_KEY, (stream_id,))
                row = await cur.fetchone()
        if row is None:
            if create:
                raise StreamForgotten(stream_id)
            return None
        try:
            key = _decrypt(self._master, bytes(row[0]).decode(), b"dek:" + stream_id.encode())
        except InvalidTag:
            raise MasterKeyMismatch() from None
        cipher = AESGCM(key)
        self._remember(stream_id, cipher)
        return cipher

    def _remember(self, stream_id: str, key: AESGCM) -> None:
        """Cache `key`; past _KEY_CACHE_SIZE entries the stale ones go, so a process that
        touches many streams keeps only the last few seconds' keys."""
        now = time.monotonic()
        if len(self._keys) >= _KEY_CACHE_SIZE:
            self._keys = {
                sid: entry
                for sid, entry in self._keys.items()
                if now - entry[0] < _KEY_CACHE_SECONDS
            }
        self._keys[stream_id] = (now, key)

    def _wrap(self, stream_id: str) -> bytes:
        """A new random data key for `stream_id`, wrapped by the master key."""
        return _encrypt(self._master, os.urandom(32), b"dek:" + stream_id.encode()).encode()


class MasterKeyMismatch(RuntimeError):
    """ODOOFLEET_SECRET_KEY is not the key that wrapped the stored data keys."""

    def __init__(self) -> None:
        super().__init__("ODOOFLEET_SECRET_KEY does not match the key the secrets were sealed with")


class StreamForgotten(RuntimeError):
    """A secret cannot be sealed for a stream whose key was shredded."""

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        super().__init__(f"stream {stream_id!r} was forgotten; it cannot hold new secrets")


def mask_sealed(value: Any) -> Any:
    """A copy of decoded JSON with every sealed secret replaced by MASK (for display)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("sealed"), str):
            return MASK
        return {key: mask_sealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_sealed(item) for item in value]
    return value
