"""The webhook endpoint stream: its phases, commands and decider."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar, TypeAlias, assert_never

import msgspec
from msgspec import UNSET, UnsetType

from commands.refusals import Refusal
from commands.runner import folder
from events.registry import DomainEvent
from events.secrets import Sealed
from events.webhook import (
    WebhookEndpointChanged,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointEnabled,
    WebhookRedeliveryRequested,
    WebhookSecretRotated,
)


class WebhookNotFound(Refusal):
    """No webhook endpoint of the caller's organization has this id (or it was deleted)."""

    def __init__(self) -> None:
        super().__init__("webhook endpoint not found")


class WebhookDisabled(Refusal):
    def __init__(self) -> None:
        super().__init__("the webhook endpoint is disabled; enable it first")


class PreviousSecret(msgspec.Struct, frozen=True):
    secret: Sealed
    valid_until: datetime


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    """What an endpoint receives and how deliveries to it are signed."""

    endpoint_id: str
    url: str
    events: tuple[str, ...]
    description: str
    secret: Sealed
    previous: PreviousSecret | None = None

    def signing_secrets(self, now: datetime) -> list[Sealed]:
        """The current secret, and the one before it while its grace period lasts."""
        if self.previous is not None and now < self.previous.valid_until:
            return [self.secret, self.previous.secret]
        return [self.secret]

    def wants(self, event_name: str) -> bool:
        return event_name in self.events


class Absent(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "absent"


class Enabled(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "enabled"
    subscription: Subscription


class Disabled(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "disabled"
    subscription: Subscription
    reason: str


class Deleted(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "deleted"


WebhookState: TypeAlias = Absent | Enabled | Disabled | Deleted


class CreateWebhook(msgspec.Struct, frozen=True, kw_only=True):
    endpoint_id: str
    url: str
    events: list[str]
    description: str
    enabled: bool
    secret: Sealed


class ChangeWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH: the fields given change, the others stay."""

    url: str | UnsetType = UNSET
    events: list[str] | UnsetType = UNSET
    description: str | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class RotateWebhookSecret(msgspec.Struct, frozen=True, kw_only=True):
    secret: Sealed
    grace: timedelta


class DisableWebhook(msgspec.Struct, frozen=True, kw_only=True):
    """The delivery worker gave up on the endpoint."""

    reason: str


class RequestRedelivery(msgspec.Struct, frozen=True, kw_only=True):
    delivery_id: str


class DeleteWebhook(msgspec.Struct, frozen=True):
    pass


WebhookCommand: TypeAlias = (
    CreateWebhook
    | ChangeWebhook
    | RotateWebhookSecret
    | DisableWebhook
    | RequestRedelivery
    | DeleteWebhook
)


def initial_state() -> WebhookState:
    return Absent()


def evolve(state: WebhookState, event: DomainEvent) -> WebhookState:
    match state, event:
        case Absent(), WebhookEndpointCreated():
            sub = Subscription(
                endpoint_id=event.endpoint_id,
                url=event.url,
                events=tuple(event.events),
                description=event.description,
                secret=event.secret,
            )
            return Enabled(sub) if event.enabled else Disabled(sub, "created disabled")
        case Enabled() | Disabled(), WebhookEndpointDeleted():
            return Deleted()
        case Enabled() | Disabled(), WebhookEndpointChanged():
            changed = msgspec.structs.replace(
                state.subscription,
                url=event.url,
                events=tuple(event.events),
                description=event.description,
            )
            return msgspec.structs.replace(state, subscription=changed)
        case Enabled() | Disabled(), WebhookSecretRotated():
            sub = state.subscription
            rotated = msgspec.structs.replace(
                sub,
                secret=event.secret,
                previous=PreviousSecret(sub.secret, event.previous_valid_until),
            )
            return msgspec.structs.replace(state, subscription=rotated)
        case Disabled(), WebhookEndpointEnabled():
            return Enabled(state.subscription)
        case Enabled(), WebhookEndpointDisabled():
            return Disabled(state.subscription, event.reason)
        case _:
            return state


fold = folder(initial_state(), evolve)


def decide(command: WebhookCommand, state: WebhookState, now: datetime) -> list[DomainEvent]:
    match command:
        case CreateWebhook():
            if not isinstance(state, Absent):
                raise WebhookNotFound  # ids are generated: a taken one is not the caller's
            return [WebhookEndpointCreated(**msgspec.structs.asdict(command), created_at=now)]
        case DeleteWebhook():
            if isinstance(state, Deleted):
                return []
            return [WebhookEndpointDeleted(endpoint_id=_existing(state).endpoint_id)]
        case _:
            return _decide_existing(command, state, _existing(state), now)


def _decide_existing(
    command: WebhookCommand, state: WebhookState, sub: Subscription, now: datetime
) -> list[DomainEvent]:
    endpoint_id = sub.endpoint_id
    match command:
        case ChangeWebhook():
            return _changes(command, state, sub, now)
        case RotateWebhookSecret(secret=secret, grace=grace):
            return [
                WebhookSecretRotated(
                    endpoint_id=endpoint_id,
                    secret=secret,
                    previous_valid_until=now + grace,
                    rotated_at=now,
                )
            ]
        case DisableWebhook(reason=reason):
            if isinstance(state, Disabled):
                return []
            return [
                WebhookEndpointDisabled(
                    endpoint_id=endpoint_id, by="delivery-failures", reason=reason, disabled_at=now
                )
            ]
        case RequestRedelivery(delivery_id=delivery_id):
            if isinstance(state, Disabled):
                raise WebhookDisabled
            return [WebhookRedeliveryRequested(endpoint_id=endpoint_id, delivery_id=delivery_id)]
        case CreateWebhook() | DeleteWebhook():
            raise AssertionError("decided before")
        case _:
            assert_never(command)


def _changes(
    command: ChangeWebhook, state: WebhookState, sub: Subscription, now: datetime
) -> list[DomainEvent]:
    url = sub.url if isinstance(command.url, UnsetType) else command.url
    events = sub.events if isinstance(command.events, UnsetType) else tuple(command.events)
    description = (
        sub.description if isinstance(command.description, UnsetType) else command.description
    )
    decided: list[DomainEvent] = []
    if (url, events, description) != (sub.url, sub.events, sub.description):
        decided.append(
            WebhookEndpointChanged(
                endpoint_id=sub.endpoint_id, url=url, events=list(events), description=description
            )
        )
    if command.enabled is True and isinstance(state, Disabled):
        decided.append(WebhookEndpointEnabled(endpoint_id=sub.endpoint_id))
    if command.enabled is False and isinstance(state, Enabled):
        decided.append(
            WebhookEndpointDisabled(
                endpoint_id=sub.endpoint_id, by="user", reason="disabled by a user", disabled_at=now
            )
        )
    return decided


def _existing(state: WebhookState) -> Subscription:
    match state:
        case Absent() | Deleted():
            raise WebhookNotFound
        case Enabled() | Disabled():
            return state.subscription
        case _:
            assert_never(state)
