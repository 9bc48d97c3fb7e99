"""An instance as a saga uses it on its server: its secrets opened by the Vault and its
validated spec, both from the facts its decider folded (commands/instance_state.py)."""

from __future__ import annotations

import msgspec

from commands.instance_state import InstanceFacts
from events.instance import instance_stream
from events.secrets import MASK, Vault
from workers.server.spec import InstanceSpec, check_spec


class InstanceSecrets(msgspec.Struct, frozen=True):
    admin_password: str  # Odoo's master password (admin_passwd)
    db_password: str
    env_vars: dict[str, str]
    admin_user_password: str | None = None  # the admin user's, in force

    def values(self) -> list[str]:
        user = [] if self.admin_user_password is None else [self.admin_user_password]
        return [self.admin_password, self.db_password, *self.env_vars.values(), *user]

    def __repr__(self) -> str:
        return "InstanceSecrets(…)"


async def open_secrets(vault: Vault, facts: InstanceFacts) -> InstanceSecrets:
    stream_id, created = instance_stream(facts.instance_id), facts.created
    user = facts.admin_user_password
    return InstanceSecrets(
        admin_password=await vault.open(stream_id, created.admin_password),
        db_password=await vault.open(stream_id, created.db_password),
        env_vars=await vault.open_all(stream_id, facts.env_vars),
        admin_user_password=None if user is None else await vault.open(stream_id, user),
    )


def spec_of(facts: InstanceFacts, secrets: InstanceSecrets) -> InstanceSpec:
    """The validated spec; ValueError names the field that would be unsafe on a server."""
    if MASK in secrets.values():
        raise ValueError("the instance's secrets were forgotten (its data key is gone)")
    created = facts.created
    settings = created.settings
    return check_spec(
        InstanceSpec(
            instance_id=facts.instance_id,
            slug=facts.slug,
            odoo_version=created.odoo_version,
            edition=created.odoo_edition,
            workers=settings.workers,
            max_cron_threads=settings.max_cron_threads,
            limit_memory_hard=settings.limit_memory_hard,
            limit_memory_soft=settings.limit_memory_soft,
            limit_time_cpu=settings.limit_time_cpu,
            limit_time_real=settings.limit_time_real,
            log_level=settings.log_level,
            addons_path=facts.addons_path,
            env_vars=secrets.env_vars,
            http_port_host=created.http_port_host,
            longpolling_port_host=created.longpolling_port_host,
            auto_subdomain=facts.auto_subdomain,
            db_name=created.db_name,
            admin_password=secrets.admin_password,
            pg_password=secrets.db_password,
        )
    )
