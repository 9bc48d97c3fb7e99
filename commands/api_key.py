"""The API key stream's commands and its decider: issue a key, revoke it.

A key never holds more than whoever issued it: every permission it gets must be one its
creator holds (`manage:<resource>` implies `view:<resource>`), and a creator limited to some
instances can only issue keys limited to those (issue 17).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TypeAlias, assert_never

import msgspec

from commands.refusals import Refusal
from events.api_key import ApiKeyCreated, ApiKeyRevoked
from events.registry import DomainEvent


class Absent(msgspec.Struct, frozen=True):
    pass


class Active(msgspec.Struct, frozen=True):
    key_id: str
    name: str


class Revoked(msgspec.Struct, frozen=True):
    key_id: str
    name: str


ApiKeyState: TypeAlias = Absent | Active | Revoked


class CreateApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    name: str
    secret_hash: str
    permissions: frozenset[str]
    instance_ids: frozenset[str] | None
    expires_at: datetime | None
    created_by: str
    # What the creator holds, as the edge authenticated it.
    creator_permissions: frozenset[str]
    creator_instance_ids: frozenset[str] | None
    # MCP controls (issue 18): no MCP write tools; the instances MCP may reach (None: all).
    mcp_read_only: bool = False
    mcp_instance_ids: frozenset[str] | None = None


class RevokeApiKey(msgspec.Struct, frozen=True, kw_only=True):
    revoked_by: str


ApiKeyCommand: TypeAlias = CreateApiKey | RevokeApiKey


class ApiKeyNotFound(Refusal):
    def __init__(self) -> None:
        super().__init__("API key not found")


class ApiKeyExists(Refusal):
    def __init__(self) -> None:
        super().__init__("an API key with this id exists")


class PermissionsExceeded(Refusal):
    """The key would hold permissions its creator does not."""

    def __init__(self, missing: Collection[str]) -> None:
        self.missing = sorted(missing)
        super().__init__(
            f"a key cannot hold more than its creator, who lacks {', '.join(self.missing)}"
        )


class ScopeExceeded(Refusal):
    """A creator limited to some instances asked for a key beyond them."""

    def __init__(self) -> None:
        super().__init__(
            "a key cannot reach instances its creator cannot; list them in instanceIds"
        )


def permits(held: Collection[str], wanted: str) -> bool:
    """Whether holding `held` grants `wanted`; `manage:<resource>` implies `view:<resource>`."""
    verb, _, resource = wanted.partition(":")
    return wanted in held or (verb == "view" and f"manage:{resource}" in held)


def initial_state() -> ApiKeyState:
    return Absent()


def evolve(state: ApiKeyState, event: DomainEvent) -> ApiKeyState:
    match event:
        case ApiKeyCreated(key_id=key_id, name=name):
            return Active(key_id, name)
        case ApiKeyRevoked():
            return Revoked(state.key_id, state.name) if isinstance(state, Active) else state
        case _:
            return state


def decide(command: ApiKeyCommand, state: ApiKeyState, now: datetime) -> list[DomainEvent]:
    match command:
        case CreateApiKey():
            return _create(command, state, now)
        case RevokeApiKey():
            return _revoke(command, state, now)
        case _:
            assert_never(command)


def _create(command: CreateApiKey, state: ApiKeyState, now: datetime) -> list[DomainEvent]:
    if not isinstance(state, Absent):
        raise ApiKeyExists()
    missing = [p for p in command.permissions if not permits(command.creator_permissions, p)]
    if missing:
        raise PermissionsExceeded(missing)
    limit = command.creator_instance_ids
    if limit is not None and (command.instance_ids is None or not command.instance_ids <= limit):
        raise ScopeExceeded()
    return [
        ApiKeyCreated(
            key_id=command.key_id,
            name=command.name,
            secret_hash=command.secret_hash,
            permissions=sorted(command.permissions),
            instance_ids=None if command.instance_ids is None else sorted(command.instance_ids),
            expires_at=command.expires_at,
            created_by=command.created_by,
            created_at=now,
            mcp_read_only=command.mcp_read_only,
            mcp_instance_ids=None
            if command.mcp_instance_ids is None
            else sorted(command.mcp_instance_ids),
        )
    ]


def _revoke(command: RevokeApiKey, state: ApiKeyState, now: datetime) -> list[DomainEvent]:
    match state:
        case Absent():
            raise ApiKeyNotFound()
        case Revoked():
            return []
        case Active(key_id=key_id):
            return [ApiKeyRevoked(key_id=key_id, revoked_by=command.revoked_by, revoked_at=now)]
        case _:
            assert_never(state)
