"""What the server-side files of one instance are rendered from, and its validation."""

from __future__ import annotations

from typing import Literal

import msgspec

from workers.server.fields import (
    LOG_LEVELS,
    ODOO_VERSIONS,
    check_addons_path,
    check_db_name,
    check_env_key,
    check_hostname,
    check_port,
    check_slug,
    check_uuid,
)

OdooVersion = Literal["15.0", "16.0", "17.0", "18.0", "19.0"]
OdooEdition = Literal["community", "enterprise"]
LogLevel = Literal["debug", "info", "warn", "error", "critical"]


class InstanceSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One instance's settings with its secrets already decrypted. Never log it whole."""

    instance_id: str
    slug: str
    odoo_version: OdooVersion
    edition: OdooEdition = "community"
    workers: int
    max_cron_threads: int
    limit_memory_hard: int
    limit_memory_soft: int
    limit_time_cpu: int
    limit_time_real: int
    log_level: LogLevel = "info"
    addons_path: str | None = None
    env_vars: dict[str, str] = msgspec.field(default_factory=dict)
    http_port_host: int
    longpolling_port_host: int
    auto_subdomain: str
    db_name: str
    admin_password: str
    pg_password: str

    def __repr__(self) -> str:
        # Passwords and envVars values must not reach a log line or a traceback.
        return f"InstanceSpec(instance_id={self.instance_id!r}, slug={self.slug!r})"


def check_spec(spec: InstanceSpec) -> InstanceSpec:
    """Refuse any value that could break out of the file or command it ends up in."""
    check_uuid(spec.instance_id)
    check_slug(spec.slug)
    check_db_name(spec.db_name)
    check_hostname(spec.auto_subdomain)
    check_port(spec.http_port_host)
    check_port(spec.longpolling_port_host)
    if spec.odoo_version not in ODOO_VERSIONS:
        raise ValueError(f"unsupported Odoo version: {spec.odoo_version!r}")
    if spec.edition not in ("community", "enterprise"):
        raise ValueError(f"unknown edition: {spec.edition!r}")
    if spec.log_level not in LOG_LEVELS:
        raise ValueError(f"unknown log level: {spec.log_level!r}")
    if spec.addons_path is not None:
        check_addons_path(spec.addons_path)
    for name, value in (
        ("workers", spec.workers),
        ("max_cron_threads", spec.max_cron_threads),
        ("limit_memory_hard", spec.limit_memory_hard),
        ("limit_memory_soft", spec.limit_memory_soft),
        ("limit_time_cpu", spec.limit_time_cpu),
        ("limit_time_real", spec.limit_time_real),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer")
    for key in spec.env_vars:
        check_env_key(key)
    _check_ini_value("admin password", spec.admin_password)
    if not spec.pg_password or "\n" in spec.pg_password or "\r" in spec.pg_password:
        # Postgres' entrypoint reads the whole secret file as the password, one line.
        raise ValueError("the database password must be one non-empty line")
    return spec


def _check_ini_value(what: str, value: str) -> None:
    # odoo.conf is read by ConfigParser: a newline would start a new option, and surrounding
    # whitespace would be stripped. The message never shows the value.
    if not value or value != value.strip() or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError(f"the {what} must be one line without surrounding spaces")
