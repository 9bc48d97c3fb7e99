"""The webhook endpoint read model: one row per endpoint (the API's Webhook object, no
secret), and reading it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import msgspec

from events.webhook import (
    WebhookEndpointChanged,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointEnabled,
    WebhookSecretRotated,
)
from projections.runtime.envelope import Envelope
from projections.runtime.fold import Folder, Row, need
from projections.runtime.reader import Reader, fetch_text


class WebhookView(Row, frozen=True, kw_only=True):
    id: str
    org_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    secret_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _changed(row: WebhookView, env: Envelope, **changes: Any) -> WebhookView:
    return msgspec.structs.replace(row, updated_at=env.at, **changes)


def created(_: WebhookView | None, e: WebhookEndpointCreated, env: Envelope) -> WebhookView:
    return WebhookView(
        id=e.endpoint_id,
        org_id=env.meta.org_id,
        url=e.url,
        events=e.events,
        description=e.description,
        enabled=e.enabled,
        disabled_reason=None if e.enabled else "created disabled",
        secret_rotated_at=None,
        created_at=e.created_at,
        updated_at=e.created_at,
        version=env.version,
    )


def changed(row: WebhookView | None, e: WebhookEndpointChanged, env: Envelope) -> WebhookView:
    return _changed(need(row, env), env, url=e.url, events=e.events, description=e.description)


def enabled(row: WebhookView | None, _: WebhookEndpointEnabled, env: Envelope) -> WebhookView:
    return _changed(need(row, env), env, enabled=True, disabled_reason=None)


def disabled(row: WebhookView | None, e: WebhookEndpointDisabled, env: Envelope) -> WebhookView:
    return _changed(need(row, env), env, enabled=False, disabled_reason=e.reason)


def rotated(row: WebhookView | None, e: WebhookSecretRotated, env: Envelope) -> WebhookView:
    return _changed(need(row, env), env, secret_rotated_at=e.rotated_at)


def deleted(row: WebhookView | None, _: WebhookEndpointDeleted, env: Envelope) -> None:
    need(row, env)


WEBHOOKS: Folder[WebhookView] = Folder(
    "webhook",
    WebhookView,
    {
        WebhookEndpointCreated: created,
        WebhookEndpointChanged: changed,
        WebhookEndpointEnabled: enabled,
        WebhookEndpointDisabled: disabled,
        WebhookSecretRotated: rotated,
        WebhookEndpointDeleted: deleted,
    },
)


_GET: Final = b"SELECT to_json(w)::text FROM webhook_endpoints w WHERE org_id = %s AND id = %s"
_LIST: Final = (
    b"SELECT coalesce(json_agg(w ORDER BY w.created_at, w.id), '[]')::text"
    b" FROM webhook_endpoints w WHERE org_id = %s"
)
_webhook: Final = msgspec.json.Decoder(WebhookView)
_webhooks: Final = msgspec.json.Decoder(list[WebhookView])


async def get_webhook(conn: Reader, org_id: str, endpoint_id: str) -> WebhookView | None:
    found = await fetch_text(conn, _GET, (org_id, endpoint_id))
    return None if found is None else _webhook.decode(found)


async def list_webhooks(conn: Reader, org_id: str) -> list[WebhookView]:
    """The organization's endpoints, oldest first."""
    return _webhooks.decode(await fetch_text(conn, _LIST, (org_id,)) or "[]")
