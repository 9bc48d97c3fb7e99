"""The API key decider: given events, when a command, then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from commands.api_key import (
    ApiKeyNotFound,
    CreateApiKey,
    PermissionsExceeded,
    RevokeApiKey,
    ScopeExceeded,
    decide,
    evolve,
    initial_state,
    permits,
)
from events.api_key import ApiKeyCreated, ApiKeyRevoked
from events.registry import DomainEvent

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY = "5b0e4c7e-8c1f-4d0e-9a8e-6f1d2c3b4a59"


def create(**changes: Any) -> CreateApiKey:
    fields: dict[str, Any] = {
        "key_id": KEY,
        "name": "ci",
        "secret_hash": "ab" * 32,
        "permissions": frozenset({"view:instances"}),
        "instance_ids": None,
        "expires_at": None,
        "created_by": "alice",
        "creator_permissions": frozenset({"manage:instances", "manage:api-keys"}),
        "creator_instance_ids": None,
    }
    return CreateApiKey(**(fields | changes))


def given(*events: DomainEvent) -> Any:
    state = initial_state()
    for event in events:
        state = evolve(state, event)
    return state


def created() -> ApiKeyCreated:
    return decide(create(), given(), NOW)[0]  # type: ignore[return-value]


def test_a_key_is_created_with_what_its_creator_holds() -> None:
    [event] = decide(create(), given(), NOW)

    assert event == ApiKeyCreated(
        key_id=KEY,
        name="ci",
        secret_hash="ab" * 32,
        permissions=["view:instances"],
        instance_ids=None,
        expires_at=None,
        created_by="alice",
        created_at=NOW,
    )


def test_manage_implies_view_for_the_ceiling() -> None:
    assert permits({"manage:servers"}, "view:servers")
    assert not permits({"view:servers"}, "manage:servers")
    assert not permits({"manage:servers"}, "view:instances")


def test_a_key_with_more_permissions_than_its_creator_is_refused() -> None:
    wanted = frozenset({"view:instances", "manage:servers", "view:audit"})

    with pytest.raises(PermissionsExceeded) as refused:
        decide(create(permissions=wanted), given(), NOW)

    assert refused.value.missing == ["manage:servers", "view:audit"]


def test_a_creator_limited_to_instances_cannot_issue_an_unlimited_key() -> None:
    limited = create(creator_instance_ids=frozenset({"i-1"}))

    with pytest.raises(ScopeExceeded):
        decide(limited, given(), NOW)


def test_a_creator_limited_to_instances_cannot_reach_further() -> None:
    wider = create(creator_instance_ids=frozenset({"i-1"}), instance_ids=frozenset({"i-1", "i-2"}))

    with pytest.raises(ScopeExceeded):
        decide(wider, given(), NOW)


def test_a_creator_limited_to_instances_issues_keys_within_them() -> None:
    within = create(creator_instance_ids=frozenset({"i-1", "i-2"}), instance_ids=frozenset({"i-2"}))

    [event] = decide(within, given(), NOW)

    assert isinstance(event, ApiKeyCreated)
    assert event.instance_ids == ["i-2"]


def test_revoking_a_key_records_who_and_when() -> None:
    events = decide(RevokeApiKey(revoked_by="bob"), given(created()), NOW)

    assert events == [ApiKeyRevoked(key_id=KEY, revoked_by="bob", revoked_at=NOW)]


def test_revoking_a_revoked_key_again_changes_nothing() -> None:
    revoked = ApiKeyRevoked(key_id=KEY, revoked_by="bob", revoked_at=NOW)

    assert decide(RevokeApiKey(revoked_by="bob"), given(created(), revoked), NOW) == []


def test_revoking_a_key_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ApiKeyNotFound):
        decide(RevokeApiKey(revoked_by="bob"), given(), NOW)
