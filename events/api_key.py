"""Events of an API key stream (`apikey-<uuid>`): a long-lived credential of an organization."""

from __future__ import annotations

from datetime import datetime

from events.registry import DomainEvent


class ApiKeyCreated(DomainEvent, frozen=True, kw_only=True):
    """A key was issued. `secret_hash` is HMAC-SHA256 of its secret under the installation's
    pepper (api/api_keys.py): the secret itself is shown once and never stored.
    `instance_ids` None: every instance of the organization."""

    key_id: str
    name: str
    secret_hash: str
    permissions: list[str]
    instance_ids: list[str] | None
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    # MCP controls (issue 18): no write tools at all; the instances MCP may reach (None: all).
    mcp_read_only: bool = False
    mcp_instance_ids: list[str] | None = None


class ApiKeyRevoked(DomainEvent, frozen=True, kw_only=True):
    key_id: str
    revoked_by: str
    revoked_at: datetime


API_KEY_EVENTS: tuple[type[DomainEvent], ...] = (ApiKeyCreated, ApiKeyRevoked)


def api_key_stream(key_id: str) -> str:
    return f"apikey-{key_id}"
