"""The admin user's password in the instance decider, given / when / then over events."""

from __future__ import annotations

import msgspec
import pytest
from builders import ID, NOW, created_instance, provisioned_instance

from commands.admin_password import RevealAdminCredentials, RotateAdminPassword, admin_password
from commands.instance import decide
from commands.instance_state import evolve, initial_state
from commands.refusals import ActionNotAllowed, AdminPasswordUnknown, InstanceNotFound
from commands.runner import folder
from events.catalog import build_registry
from events.instance import (
    ActionRequested,
    AdminCredentialsRevealed,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    InstanceCreated,
    InstanceStopped,
    RemovalRequested,
)
from events.registry import DomainEvent, encode_event
from events.secrets import Sealed

fold = folder(initial_state(), evolve)
FIRST = Sealed("v1:admin-user")
NEW = Sealed("v1:new-admin-user")


def rotation_requested() -> list[DomainEvent]:
    return [
        *provisioned_instance(),
        AdminPasswordRotationRequested(
            instance_id=ID, operation_id="op-rotate", admin_user_password=NEW
        ),
    ]


def rotate() -> RotateAdminPassword:
    return RotateAdminPassword(operation_id="op-rotate", admin_user_password=NEW)


def test_creating_an_instance_records_its_admin_user_password_sealed() -> None:
    [created_event, _] = created_instance()

    assert isinstance(created_event, InstanceCreated)
    assert created_event.admin_user_password == FIRST
    assert admin_password(fold(created_instance())) == FIRST


def test_revealing_the_credentials_records_who_and_when_without_the_secret() -> None:
    events = decide(RevealAdminCredentials(revealed_by="alice"), fold(provisioned_instance()), NOW)

    assert events == [
        AdminCredentialsRevealed(instance_id=ID, revealed_by="alice", revealed_at=NOW)
    ]
    assert "sealed" not in encode_event(events[0])


def test_a_stopped_instance_still_reveals_its_credentials() -> None:
    history = [
        *provisioned_instance(),
        ActionRequested(instance_id=ID, action="stop", operation_id="s"),
        InstanceStopped(instance_id=ID, operation_id="s"),
    ]

    assert admin_password(fold(history)) == FIRST


def test_an_instance_being_removed_does_not_reveal_its_credentials() -> None:
    history = [*provisioned_instance(), RemovalRequested(instance_id=ID, operation_id="rm")]

    with pytest.raises(ActionNotAllowed):
        decide(RevealAdminCredentials(revealed_by="alice"), fold(history), NOW)


def test_an_unknown_instance_reveals_nothing() -> None:
    with pytest.raises(InstanceNotFound):
        decide(RevealAdminCredentials(revealed_by="alice"), fold([]), NOW)


def test_an_instance_created_before_admin_passwords_has_none_to_reveal() -> None:
    [old, *rest] = provisioned_instance()
    assert isinstance(old, InstanceCreated)
    history = [msgspec.structs.replace(old, admin_user_password=None), *rest]

    with pytest.raises(AdminPasswordUnknown):
        decide(RevealAdminCredentials(revealed_by="alice"), fold(history), NOW)


def test_rotating_a_running_instance_requests_the_new_password() -> None:
    events = decide(rotate(), fold(provisioned_instance()), NOW)

    assert events == [
        AdminPasswordRotationRequested(
            instance_id=ID, operation_id="op-rotate", admin_user_password=NEW
        )
    ]


@pytest.mark.parametrize(
    "history",
    [
        created_instance,
        lambda: [*provisioned_instance(), RemovalRequested(instance_id=ID, operation_id="rm")],
    ],
)
def test_rotating_an_instance_that_is_not_running_is_refused(history: object) -> None:
    with pytest.raises(ActionNotAllowed):
        decide(rotate(), fold(history()), NOW)  # type: ignore[operator]


def test_the_old_password_holds_until_the_rotation_is_done() -> None:
    assert admin_password(fold(rotation_requested())) == FIRST


def test_a_completed_rotation_makes_the_new_password_the_one_revealed() -> None:
    history = [
        *rotation_requested(),
        AdminPasswordRotated(instance_id=ID, operation_id="op-rotate"),
    ]

    assert admin_password(fold(history)) == NEW
    assert fold(history).status == "running"


def test_a_failed_rotation_keeps_the_old_password_and_the_instance_running() -> None:
    failure = AdminPasswordRotationFailed(
        instance_id=ID, operation_id="op-rotate", step="set-password", message="refused"
    )
    state = fold([*rotation_requested(), failure])

    assert (admin_password(state), state.status) == (FIRST, "running")


def test_an_instance_created_event_of_version_1_reads_without_an_admin_user_password() -> None:
    [created_event, _] = created_instance()
    data = msgspec.json.decode(encode_event(created_event))
    del data["admin_user_password"]

    decoded = build_registry().decode("InstanceCreated", 1, msgspec.json.encode(data))

    assert isinstance(decoded, InstanceCreated)
    assert decoded.admin_user_password is None
    assert InstanceCreated.schema_version == 2
