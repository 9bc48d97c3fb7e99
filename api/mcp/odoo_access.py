"""Where an instance's Odoo answers and the credentials MCP calls it with (its own API user and
key, issued by the credentials saga), from the instance's and its server's own streams (the
same folds the sagas use), secrets opened by the Vault."""

from __future__ import annotations

from typing import Final, NamedTuple

from commands.instance_state import Running, fold
from commands.runner import load
from events.instance import McpModelAccess, instance_stream
from events.secrets import MASK, Vault
from events.store import EventStore
from workers.odoo.jsonrpc import OdooTarget
from workers.server.credentials import (
    connection_info,
    load_server,
    open_server_secrets,
    profile_of,
)

NO_CREDENTIALS: Final = (
    "no MCP credentials were issued for this instance yet (an instance provisioned before "
    "odoofleet issued them, or their operation failed): POST "
    "/api/instances/{id}/mcp/rotate-credentials issues them"
)


class OdooAccess(NamedTuple):
    target: OdooTarget
    models: McpModelAccess  # the instance's allowlist (PATCH mcpModelAccess)


class OdooUnavailable(Exception):
    """The instance cannot be called now (not running, credentials gone, server unknown)."""


async def odoo_access(
    store: EventStore, vault: Vault, org_id: str, instance_id: str, connect_timeout: float
) -> OdooAccess:
    """The instance's Odoo, called as the dedicated API user with the key issued for MCP (never
    the admin user)."""
    loaded = await load(store, instance_stream(instance_id), fold, org_id=org_id)
    state = loaded.state
    if not isinstance(state, Running):
        raise OdooUnavailable(f"the instance is {state.status}, not running")
    facts = state.facts
    credentials = facts.mcp_credentials
    if credentials is None:
        raise OdooUnavailable(NO_CREDENTIALS.format(id=instance_id))
    stream_id = instance_stream(instance_id)
    password = await vault.open(stream_id, credentials.api_key)
    if password == MASK:
        raise OdooUnavailable("the instance's Odoo credentials were crypto-shredded")
    try:
        profile = profile_of(await load_server(store, facts.server_id))
        secrets = await open_server_secrets(vault, profile)
        server = connection_info(profile, secrets, connect_timeout)
    except (LookupError, ValueError) as e:
        raise OdooUnavailable(f"the instance's server cannot be reached: {e}") from e
    target = OdooTarget(
        server=server,
        port=facts.created.http_port_host,
        host=facts.auto_subdomain,
        db=facts.created.db_name,
        login=credentials.login,
        password=password,
    )
    return OdooAccess(target, facts.mcp_model_access)
