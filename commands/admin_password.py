"""The admin user's password: who may be told it, and asking for a new one (the rotation
saga sets it in Odoo, then records AdminPasswordRotated)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from commands.instance_state import (
    Abandoned,
    Absent,
    InstanceFacts,
    InstanceState,
    Removed,
    Removing,
    Running,
)
from commands.refusals import ActionNotAllowed, AdminPasswordUnknown, InstanceNotFound
from events.instance import AdminCredentialsRevealed, AdminPasswordRotationRequested
from events.registry import DomainEvent
from events.secrets import Sealed


class RevealAdminCredentials(msgspec.Struct, frozen=True, kw_only=True):
    revealed_by: str


class RotateAdminPassword(msgspec.Struct, frozen=True, kw_only=True):
    """`admin_user_password` is the new password, generated and sealed at the edge."""

    operation_id: str
    admin_user_password: Sealed


def admin_password(state: InstanceState) -> Sealed:
    """The admin user's current password, sealed, if the instance's state allows telling it."""
    password = _revealable(state).admin_user_password
    if password is None:
        raise AdminPasswordUnknown()
    return password


def _revealable(state: InstanceState) -> InstanceFacts:
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Removing() | Abandoned():
            raise ActionNotAllowed("reveal the admin credentials of", state.status)
        case _:
            return state.facts


def reveal(
    command: RevealAdminCredentials, state: InstanceState, now: datetime
) -> list[DomainEvent]:
    admin_password(state)  # refuses what may not be revealed
    facts = _revealable(state)
    return [
        AdminCredentialsRevealed(
            instance_id=facts.instance_id, revealed_by=command.revealed_by, revealed_at=now
        )
    ]


def rotate(command: RotateAdminPassword, state: InstanceState) -> list[DomainEvent]:
    facts = rotatable(state)
    return [
        AdminPasswordRotationRequested(
            instance_id=facts.instance_id,
            operation_id=command.operation_id,
            admin_user_password=command.admin_user_password,
        )
    ]


def rotatable(state: InstanceState) -> InstanceFacts:
    """Only a running instance: the saga sets the password through the running Odoo. (Checked
    before the new password is sealed, so a refused request seals nothing.)"""
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Running():
            return state.facts
        case _:
            raise ActionNotAllowed("rotate the admin password of", state.status)
