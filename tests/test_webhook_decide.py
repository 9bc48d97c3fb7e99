"""The webhook endpoint decider, given / when / then over events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands.webhook import (
    ChangeWebhook,
    CreateWebhook,
    DeleteWebhook,
    Disabled,
    DisableWebhook,
    Enabled,
    RequestRedelivery,
    RotateWebhookSecret,
    WebhookDisabled,
    WebhookNotFound,
    decide,
    fold,
)
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

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OLD, NEW = Sealed("v1:old"), Sealed("v1:new")


def created(enabled: bool = True) -> WebhookEndpointCreated:
    return WebhookEndpointCreated(
        endpoint_id="e1",
        url="https://hooks.example.com/odoo",
        events=["instance.started"],
        description="chat",
        enabled=enabled,
        secret=OLD,
        created_at=NOW,
    )


def when(given: list[DomainEvent], command: object) -> list[DomainEvent]:
    return decide(command, fold(given), NOW)  # type: ignore[arg-type]


def test_creating_an_endpoint_records_its_subscription_and_sealed_secret() -> None:
    command = CreateWebhook(
        endpoint_id="e1",
        url="https://hooks.example.com/odoo",
        events=["instance.started"],
        description="chat",
        enabled=True,
        secret=OLD,
    )
    assert when([], command) == [created()]


def test_a_change_records_the_whole_subscription_after_it() -> None:
    assert when([created()], ChangeWebhook(events=["server.created"])) == [
        WebhookEndpointChanged(
            endpoint_id="e1",
            url="https://hooks.example.com/odoo",
            events=["server.created"],
            description="chat",
        )
    ]


def test_a_change_to_what_it_already_is_records_nothing() -> None:
    assert when([created()], ChangeWebhook(description="chat", enabled=True)) == []


def test_disabling_by_a_user_and_enabling_again() -> None:
    (disabled,) = when([created()], ChangeWebhook(enabled=False))
    assert disabled == WebhookEndpointDisabled(
        endpoint_id="e1", by="user", reason="disabled by a user", disabled_at=NOW
    )
    assert isinstance(fold([created(), disabled]), Disabled)
    assert when([created(), disabled], ChangeWebhook(enabled=True)) == [
        WebhookEndpointEnabled(endpoint_id="e1")
    ]


def test_the_delivery_worker_giving_up_disables_once_with_its_reason() -> None:
    (disabled,) = when([created()], DisableWebhook(reason="failed for 24 h"))
    assert disabled.by == "delivery-failures"  # type: ignore[attr-defined]
    assert when([created(), disabled], DisableWebhook(reason="again")) == []


def test_a_rotation_keeps_the_old_secret_signing_for_the_grace_period() -> None:
    (rotated,) = when([created()], RotateWebhookSecret(secret=NEW, grace=timedelta(hours=24)))
    assert rotated == WebhookSecretRotated(
        endpoint_id="e1", secret=NEW, previous_valid_until=NOW + timedelta(hours=24), rotated_at=NOW
    )
    state = fold([created(), rotated])
    assert isinstance(state, Enabled)
    assert state.subscription.signing_secrets(NOW) == [NEW, OLD]
    assert state.subscription.signing_secrets(NOW + timedelta(hours=24)) == [NEW]


def test_a_redelivery_is_recorded_for_an_enabled_endpoint_and_refused_for_a_disabled_one() -> None:
    assert when([created()], RequestRedelivery(delivery_id="d1")) == [
        WebhookRedeliveryRequested(endpoint_id="e1", delivery_id="d1")
    ]
    with pytest.raises(WebhookDisabled):
        when([created(enabled=False)], RequestRedelivery(delivery_id="d1"))


def test_deleting_twice_records_one_deletion_and_nothing_else_is_allowed_after() -> None:
    assert when([created()], DeleteWebhook()) == [WebhookEndpointDeleted(endpoint_id="e1")]
    gone = [created(), WebhookEndpointDeleted(endpoint_id="e1")]
    assert when(gone, DeleteWebhook()) == []
    with pytest.raises(WebhookNotFound):
        when(gone, ChangeWebhook(enabled=True))


def test_an_unknown_endpoint_is_not_found() -> None:
    with pytest.raises(WebhookNotFound):
        when([], RotateWebhookSecret(secret=NEW, grace=timedelta(hours=1)))
    with pytest.raises(WebhookNotFound):
        when([], DeleteWebhook())
