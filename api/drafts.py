"""Request bodies turned into command inputs: new ids, generated passwords and defaults are
chosen here, at the edge, so that the deciders stay pure."""

from __future__ import annotations

import ipaddress
import secrets
import uuid

import msgspec

from api.config import ApiConfig
from api.errors import FieldError, InvalidRequest
from api.fields import RESERVED_ENV_PREFIXES, RESERVED_ENV_VARS
from api.wire_instances import CreateInstanceBody, UpdateInstanceBody
from api.wire_servers import CreateServerBody
from commands.create_instance import InstanceDraft
from commands.defaults import ODOO_HTTP_PORT, ODOO_LONGPOLLING_PORT, settings_for, slug_candidates
from commands.server_commands import ServerDraft
from events.instance import InstanceChanges

# Tries for a slug generated from the name before giving up with 409: the plain name, then
# with a random suffix.
_GENERATED_SLUG_TRIES = 4


def instance_draft(body: CreateInstanceBody, settings: ApiConfig) -> InstanceDraft:
    """The client's choices, each passed on by its name in InstanceChoices (the create body
    names no other field), and what odoofleet chooses."""
    refuse_reserved_env_vars(body.env_vars)
    chosen = msgspec.structs.asdict(body)
    del chosen["slug"]  # reserved by the create's transaction, from slugs_for
    return InstanceDraft(
        **chosen | {"server_id": str(body.server_id)},
        instance_id=str(uuid.uuid4()),
        operation_id=str(uuid.uuid4()),
        http_port=ODOO_HTTP_PORT,
        longpolling_port=ODOO_LONGPOLLING_PORT,
        settings=settings_for(body.environment_type),
        mcp_write_enabled=False,
        admin_password=secrets.token_urlsafe(32),
        db_password=secrets.token_urlsafe(32),
        admin_user_password=admin_user_password(),
        base_domain=settings.base_domain,
    )


def admin_user_password() -> str:
    """A new password for the Odoo admin user: 32 random bytes, URL-safe (256 bits)."""
    return secrets.token_urlsafe(32)


def slugs_for(body: CreateInstanceBody) -> list[str]:
    if body.slug is not None:
        return [body.slug]
    suffixes = [secrets.token_hex(2) for _ in range(_GENERATED_SLUG_TRIES)]
    return slug_candidates(body.name, suffixes)[:_GENERATED_SLUG_TRIES]


def instance_changes(body: UpdateInstanceBody) -> InstanceChanges[str]:
    changes = msgspec.structs.asdict(body)
    if all(value is msgspec.UNSET for value in changes.values()):
        raise InvalidRequest(FieldError("body", "give at least one field to change"))
    if not isinstance(body.env_vars, msgspec.UnsetType):
        refuse_reserved_env_vars(body.env_vars)
    return InstanceChanges[str](**changes)


def refuse_reserved_env_vars(env_vars: dict[str, str]) -> None:
    """envVars may not name a variable odoofleet sets itself, nor one of the families that
    Odoo and libpq read ahead of odoo.conf (api/fields.py explains each)."""
    reserved = sorted(
        name
        for name in env_vars
        if name in RESERVED_ENV_VARS or name.startswith(RESERVED_ENV_PREFIXES)
    )
    if reserved:
        message = (
            "reserved (odoofleet sets it, or Odoo and libpq read it ahead of odoo.conf),"
            f" choose another name: {', '.join(reserved)}"
        )
        raise InvalidRequest(FieldError("envVars", message))


def server_draft(body: CreateServerBody) -> ServerDraft:
    if body.auth_method == "key" and (body.ssh_private_key is None or body.ssh_password):
        raise InvalidRequest(
            FieldError("sshPrivateKey", "authMethod key needs sshPrivateKey and no sshPassword")
        )
    if body.auth_method == "password" and (body.ssh_password is None or body.ssh_private_key):
        raise InvalidRequest(
            FieldError("sshPassword", "authMethod password needs sshPassword and no sshPrivateKey")
        )
    _check_address(body.host)
    return ServerDraft(
        server_id=str(uuid.uuid4()),
        operation_id=str(uuid.uuid4()),
        name=body.name,
        host=body.host,
        port=body.port,
        ssh_user=body.ssh_user,
        auth_method=body.auth_method,
        ssh_private_key=body.ssh_private_key,
        ssh_password=body.ssh_password,
        host_key=body.host_key,
        max_ssh_sessions=body.max_ssh_sessions,
        public_host_ports=body.public_host_ports,
    )


def _check_address(host: str) -> None:
    """A host that looks like an IP address must be one (`1.2.3.999` is not a name either)."""
    if ":" in host or host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
        except ValueError as e:
            raise InvalidRequest(FieldError("host", "not a valid IP address")) from e
