"""Where an instance's Odoo answers and the credentials MCP calls it with, from the instance's
and its server's own streams (the same folds the sagas use), secrets opened by the Vault."""

from __future__ import annotations

from commands.admin_password import admin_password
from commands.instance_state import Running, evolve, initial_state
from commands.refusals import AdminPasswordUnknown, InstanceNotFound
from commands.runner import folder, load
from events.instance import ADMIN_LOGIN, instance_stream
from events.secrets import MASK, Vault
from events.store import EventStore
from workers.odoo.jsonrpc import OdooTarget
from workers.server.credentials import (
    connection_info,
    load_server,
    open_server_secrets,
    profile_of,
)

_fold = folder(initial_state(), evolve)


class OdooUnavailable(Exception):
    """The instance cannot be called now (not running, credentials gone, server unknown)."""


async def odoo_target(
    store: EventStore, vault: Vault, org_id: str, instance_id: str, connect_timeout: float
) -> OdooTarget:
    loaded = await load(store, instance_stream(instance_id), _fold, org_id=org_id)
    state = loaded.state
    if not isinstance(state, Running):
        raise OdooUnavailable(f"the instance is {state.status}, not running")
    try:
        sealed = admin_password(state)
    except (AdminPasswordUnknown, InstanceNotFound) as e:
        raise OdooUnavailable(f"no Odoo credentials are known for this instance: {e}") from e
    facts = state.facts
    stream_id = instance_stream(instance_id)
    password = await vault.open(stream_id, sealed)
    if password == MASK:
        raise OdooUnavailable("the instance's Odoo credentials were crypto-shredded")
    try:
        profile = profile_of(await load_server(store, facts.server_id))
        secrets = await open_server_secrets(vault, profile)
        server = connection_info(profile, secrets, connect_timeout)
    except (LookupError, ValueError) as e:
        raise OdooUnavailable(f"the instance's server cannot be reached: {e}") from e
    return OdooTarget(
        server=server,
        port=facts.created.http_port_host,
        host=facts.auto_subdomain,
        db=facts.created.db_name,
        login=ADMIN_LOGIN,
        password=password,
    )
