"""Events of a webhook endpoint stream (`webhook-<uuid>`): its subscription and signing secret."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from events.registry import DomainEvent
from events.secrets import Sealed

DisabledBy = Literal["user", "delivery-failures"]


class WebhookEndpointCreated(DomainEvent, frozen=True, kw_only=True):
    endpoint_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    secret: Sealed
    created_at: datetime


class WebhookEndpointChanged(DomainEvent, frozen=True, kw_only=True):
    """The subscription as it is after the change (url, events and description together)."""

    endpoint_id: str
    url: str
    events: list[str]
    description: str


class WebhookEndpointEnabled(DomainEvent, frozen=True, kw_only=True):
    endpoint_id: str


class WebhookEndpointDisabled(DomainEvent, frozen=True, kw_only=True):
    endpoint_id: str
    by: DisabledBy
    reason: str
    disabled_at: datetime


class WebhookSecretRotated(DomainEvent, frozen=True, kw_only=True):
    """A new signing secret; deliveries carry a signature with the one before it too until
    `previous_valid_until`, so receivers can switch without losing a message."""

    endpoint_id: str
    secret: Sealed
    previous_valid_until: datetime
    rotated_at: datetime


class WebhookRedeliveryRequested(DomainEvent, frozen=True, kw_only=True):
    endpoint_id: str
    delivery_id: str


class WebhookEndpointDeleted(DomainEvent, frozen=True, kw_only=True):
    endpoint_id: str


WEBHOOK_EVENTS: tuple[type[DomainEvent], ...] = (
    WebhookEndpointCreated,
    WebhookEndpointChanged,
    WebhookEndpointEnabled,
    WebhookEndpointDisabled,
    WebhookSecretRotated,
    WebhookRedeliveryRequested,
    WebhookEndpointDeleted,
)


def webhook_stream(endpoint_id: str) -> str:
    return f"webhook-{endpoint_id}"
