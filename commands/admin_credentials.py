"""Revealing and rotating an instance's admin credentials through the command runner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from commands.admin_password import (
    RevealAdminCredentials,
    RotateAdminPassword,
    admin_password,
    rotatable,
)
from commands.instance import decide
from commands.instance_state import InstanceState, evolve, initial_state
from commands.runner import Outcome, execute, folder
from events.instance import ADMIN_LOGIN, instance_stream
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.secrets import MASK, StreamForgotten, Vault
from events.store import EventStore

_fold = folder(initial_state(), evolve)


class AdminCredentials(msgspec.Struct, frozen=True, kw_only=True):
    login: str
    password: str


async def reveal_admin_credentials(
    store: EventStore,
    vault: Vault,
    instance_id: str,
    *,
    revealed_by: str,
    now: datetime,
    metadata: EventMetadata,
) -> tuple[AdminCredentials, Outcome]:
    """The admin user's current credentials, once the reveal is recorded (audited), and what
    recording it did. A password that can no longer be opened (its key was shredded) is
    refused before anything is recorded."""
    stream_id = instance_stream(instance_id)
    opened: list[str] = []

    async def decision(state: InstanceState) -> Sequence[DomainEvent]:
        events = decide(RevealAdminCredentials(revealed_by=revealed_by), state, now)
        password = await vault.open(stream_id, admin_password(state))
        if password == MASK:
            raise StreamForgotten(stream_id)
        opened.append(password)
        return events

    outcome = await execute(store, stream_id, _fold, decision, metadata, retry_on_conflict=True)
    # After a lost race the decision ran again: the last password is the one of the state
    # whose reveal was recorded.
    return AdminCredentials(login=ADMIN_LOGIN, password=opened[-1]), outcome


async def rotate_admin_password(
    store: EventStore,
    vault: Vault,
    instance_id: str,
    new_password: str,
    *,
    operation_id: str,
    now: datetime,
    metadata: EventMetadata,
) -> Outcome:
    """Ask for `new_password` (generated at the edge) to replace the admin user's; it is
    sealed only once the instance is known to allow it."""
    stream_id = instance_stream(instance_id)

    async def decision(state: InstanceState) -> Sequence[DomainEvent]:
        rotatable(state)
        sealed = await vault.seal(stream_id, new_password)
        command = RotateAdminPassword(operation_id=operation_id, admin_user_password=sealed)
        return decide(command, state, now)

    return await execute(store, stream_id, _fold, decision, metadata, retry_on_conflict=True)
