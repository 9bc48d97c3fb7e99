"""The Odoo credentials MCP calls an instance with (a dedicated API user and its API key):
asked for after the first provisioning (with its outcome) and by a rotation on demand. The
credentials saga issues them in Odoo and records them as its outcome
(commands/instance_outcomes.py: RecordMcpCredentialsIssued, sealed under the instance's data
key, so deleting the instance shreds them); until then the ones in force, if any, hold."""

from __future__ import annotations

import uuid
from typing import Final

import msgspec

from commands.instance_state import (
    Absent,
    InstanceFacts,
    InstanceState,
    Removed,
    Running,
)
from commands.refusals import ActionNotAllowed, InstanceNotFound
from events.instance import McpCredentialsRequested
from events.registry import DomainEvent

# The request decided with the first provisioning's outcome takes an id derived from that
# operation's, so deciding it again (a lost race, a redelivery) asks for the same operation.
_AFTER_PROVISIONING: Final = uuid.UUID("5f0c1f8e-3c55-4a8e-9a35-6d2c0d1e4b7a")


class RotateMcpCredentials(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


def rotate_mcp_credentials(
    command: RotateMcpCredentials, state: InstanceState
) -> list[DomainEvent]:
    facts = _rotatable(state)
    return [
        McpCredentialsRequested(instance_id=facts.instance_id, operation_id=command.operation_id)
    ]


def requested_after_provisioning(facts: InstanceFacts, provisioning_op: str) -> list[DomainEvent]:
    """The first credentials, for an instance that has none yet."""
    if facts.mcp_credentials is not None:
        return []
    operation_id = str(uuid.uuid5(_AFTER_PROVISIONING, provisioning_op))
    return [McpCredentialsRequested(instance_id=facts.instance_id, operation_id=operation_id)]


def _rotatable(state: InstanceState) -> InstanceFacts:
    """Only a running instance: the saga creates the key through the running Odoo."""
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Running():
            return state.facts
        case _:
            raise ActionNotAllowed("rotate the MCP credentials of", state.status)
