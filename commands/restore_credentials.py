"""New MCP credentials for an instance another instance's backup was restored into: the
restored database is the source's, so the key recorded for the target was not in it, and the
source's key was deleted from it (workers/sagas/restore.py, step `credentials`). Asked for by
the restore's last step, once per restore (an id derived from the restore's operation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

import msgspec

from commands.instance_state import Abandoned, Absent, InstanceState, Removed, Removing
from commands.refusals import InstanceNotFound
from events.instance import McpCredentialsRequested
from events.registry import DomainEvent

_AFTER_RESTORE: Final = uuid.UUID("8d3f5a61-2b7e-4c90-a1d4-6e2f0b9c7a35")


class RequestMcpCredentialsAfterRestore(msgspec.Struct, frozen=True, kw_only=True):
    restore_operation_id: str


def credentials_operation(restore_operation_id: str) -> str:
    """The credentials operation a restore asks for: deciding it again asks for the same."""
    return str(uuid.uuid5(_AFTER_RESTORE, restore_operation_id))


def decide(
    command: RequestMcpCredentialsAfterRestore, state: InstanceState, _now: datetime
) -> list[DomainEvent]:
    """A target being removed gets none: its removal revokes whatever it holds."""
    if isinstance(state, Absent | Removed):
        raise InstanceNotFound
    if isinstance(state, Removing | Abandoned):
        return []
    operation_id = credentials_operation(command.restore_operation_id)
    if operation_id in state.facts.outcomes:
        return []
    return [McpCredentialsRequested(instance_id=state.facts.instance_id, operation_id=operation_id)]
