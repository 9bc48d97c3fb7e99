"""Wire DTOs of webhooks (camelCase JSON, API.md "Second wave"); the signing secret is sent
once, when it is made (create, rotate-secret)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

Url = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=2048,
        description="https:// (http:// only to ODOOFLEET_WEBHOOK_ALLOWED_NETWORKS)",
    ),
]
EventNames = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=64)]],
    msgspec.Meta(
        min_length=1, max_length=64, description="Public event names, e.g. instance.started"
    ),
]
Description = Annotated[str, msgspec.Meta(max_length=500)]


class CreateWebhookBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    url: Url
    events: EventNames
    description: Description = ""
    enabled: bool = True


class ChangeWebhookBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """The fields given change; the others stay."""

    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: EventNames | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET


class Webhook(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    secret_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CreatedWebhook(Webhook, kw_only=True):
    secret: str = msgspec.field(name="secret")


class WebhookList(msgspec.Struct, rename="camel", kw_only=True):
    webhooks: list[Webhook]


class RotatedSecret(msgspec.Struct, rename="camel", kw_only=True):
    secret: str
    previous_secret_valid_until: datetime


class Attempt(msgspec.Struct, rename="camel", kw_only=True):
    attempt: int
    attempted_at: datetime
    outcome: str
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str | None


class Delivery(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    event_id: str
    event_type: str
    status: str
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: list[Attempt]


class DeliveryList(msgspec.Struct, rename="camel", kw_only=True):
    deliveries: list[Delivery]
