"""API keys as bearer credentials (issue 17): `ofk_<prefix>_<secret>`, checked against the
key's own stream on every request, so a revocation holds from the next request on.

The prefix is the key's id without dashes: a key names the one stream it is checked against,
and the listing shows it. The secret is stored only as HMAC-SHA256 under a pepper derived from
the installation's secret key (ODOOFLEET_SECRET_KEY), bound to the key's id, and compared in
constant time: a copy of the log or the database gives no usable key.

When a key was last used is kept in memory and written in batches (`KeyUsage`), never once per
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import psycopg
from litestar.connection import ASGIConnection

from api.auth import Principal, Unauthenticated
from api.errors import problem
from commands.refusals import InstanceNotFound
from events.api_key import ApiKeyCreated, ApiKeyRevoked, api_key_stream
from events.metadata import EventMetadata
from events.pool import Pool
from events.secrets import master_key_from
from events.store import EventStore
from projections.api_keys import key_prefix

KEY_PREFIX: Final = "ofk_"
_SECRET_BYTES: Final = 32
_FLUSH_SECONDS: Final = 5.0
_meta: Final = msgspec.json.Decoder(EventMetadata)

# Writes the batch's last uses; a later use already written is kept (several API processes).
_RECORD_USES: Final = (
    b"INSERT INTO api_key_usage (key_id, last_used_at)"
    b" SELECT * FROM unnest(%s::text[], %s::timestamptz[])"
    b" ON CONFLICT (key_id) DO UPDATE"
    b" SET last_used_at = greatest(api_key_usage.last_used_at, EXCLUDED.last_used_at)"
)


class IssuedKey(msgspec.Struct, frozen=True):
    """A new key: `token` is shown once; only `secret_hash` is kept."""

    token: str
    secret_hash: str


class KeyHasher:
    """Makes and checks the stored form of a key's secret."""

    def __init__(self, secret_key: str) -> None:
        self._pepper = hmac.new(
            master_key_from(secret_key), b"odoofleet:api-key-pepper", hashlib.sha256
        ).digest()

    def issue(self, key_id: str) -> IssuedKey:
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        return IssuedKey(f"{KEY_PREFIX}{key_prefix(key_id)}_{secret}", self.hash(key_id, secret))

    def hash(self, key_id: str, secret: str) -> str:
        return hmac.new(self._pepper, f"{key_id}:{secret}".encode(), hashlib.sha256).hexdigest()

    def matches(self, key_id: str, secret: str, stored: str) -> bool:
        return hmac.compare_digest(self.hash(key_id, secret), stored)


class KeyUsage:
    """When each key was last used, written every few seconds in one statement."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._pending: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def used(self, key_id: str, at: datetime) -> None:
        self._pending[key_id] = at
        if self._task is None:
            self._task = asyncio.create_task(self._flush_every(), name="api-key-usage")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute(_RECORD_USES, (list(batch), list(batch.values())))
        except psycopg.Error as e:
            # Best effort: a later use is written at the next flush.
            logging.getLogger(__name__).warning("could not record API key use: %s", e)
            for key_id, at in batch.items():
                self._pending.setdefault(key_id, at)

    async def _flush_every(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_SECONDS)
            await self.flush()


class ApiKeys:
    """Authenticates `ofk_` bearer tokens (api/auth.py hands them here)."""

    def __init__(self, store: EventStore, hasher: KeyHasher, usage: KeyUsage) -> None:
        self._store = store
        self.hasher = hasher
        self.usage = usage

    async def authenticate(self, token: str) -> Principal:
        prefix, _, secret = token.removeprefix(KEY_PREFIX).partition("_")
        try:
            key_id = str(uuid.UUID(hex=prefix))
        except ValueError:
            raise _invalid() from None
        if len(prefix) != 32 or not secret:
            raise _invalid()
        recorded = await self._store.read_stream(api_key_stream(key_id))
        events = self._store.decode_all(recorded)
        if not events or not isinstance(created := events[0], ApiKeyCreated):
            raise _invalid()
        if not self.hasher.matches(key_id, secret, created.secret_hash):
            raise _invalid()
        if any(isinstance(e, ApiKeyRevoked) for e in events):
            raise Unauthenticated("the API key has been revoked", token_given=True)
        now = datetime.now(UTC)
        if created.expires_at is not None and created.expires_at <= now:
            raise Unauthenticated("the API key has expired", token_given=True)
        self.usage.used(key_id, now)
        return Principal(
            user_id=f"apikey:{key_id}",
            user_name=created.name,
            org_id=_meta.decode(recorded[0].metadata).org_id,
            permissions=frozenset(created.permissions),
            instance_ids=None if created.instance_ids is None else frozenset(created.instance_ids),
            mcp_read_only=created.mcp_read_only,
            mcp_instance_ids=None
            if created.mcp_instance_ids is None
            else frozenset(created.mcp_instance_ids),
        )

    def check_scope(
        self, principal: Principal, connection: ASGIConnection[Any, Any, Any, Any], needed: str
    ) -> None:
        """A key limited to some instances reaches only those: another instance is a 404,
        as if it did not exist, and creating one is refused (it would be out of reach)."""
        scope = principal.instance_ids
        if scope is None:
            return
        params: Mapping[str, Any] = connection.path_params
        instance_id = params.get("instance_id")
        if instance_id is not None and str(instance_id) not in scope:
            raise InstanceNotFound()
        operation = getattr(connection.route_handler, "operation_id", None)
        if operation == "createInstance":
            raise problem(
                403, "forbidden", "an API key limited to some instances cannot create instances"
            )
        # Org-wide views of every instance's events: the audit trail, and webhooks (which
        # would deliver the other instances' events). The event stream filters by the scope.
        if operation == "listAuditLogs" or needed.endswith(":webhooks"):
            raise problem(
                403,
                "forbidden",
                "an API key limited to some instances cannot use this organization-wide"
                " endpoint; read an instance's history at /api/instances/{id}/events",
            )


def _invalid() -> Unauthenticated:
    return Unauthenticated("invalid API key", token_given=True)
