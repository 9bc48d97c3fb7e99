"""Defaults chosen at creation: Odoo settings by environment type, ports, version, naming."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

import msgspec

from events.instance import EnvironmentType, InstanceSettings, OdooVersion

DEFAULT_ODOO_VERSION: Final[OdooVersion] = "19.0"
ODOO_HTTP_PORT: Final = 8069
ODOO_LONGPOLLING_PORT: Final = 8072


class HostPorts(msgspec.Struct, frozen=True):
    """The range host ports are taken from on each server, inclusive (the container ports
    above are published on these)."""

    first: int
    last: int


DEFAULT_HOST_PORTS: Final = HostPorts(20000, 29999)

_GIB: Final = 1024**3

# ODOO-HOSTING.md §2.1/§2.5: workers > 0 is needed for the gevent (websocket) process; the
# image's own memory limits (2 GiB soft, 2.5 GiB hard) and generous time limits for
# production, fewer workers and smaller limits where fewer people work.
_SETTINGS: Final[dict[str, InstanceSettings]] = {
    "production": InstanceSettings(
        workers=4,
        max_cron_threads=2,
        limit_memory_hard=_GIB * 5 // 2,
        limit_memory_soft=_GIB * 2,
        limit_time_cpu=600,
        limit_time_real=1200,
        log_level="info",
    ),
    "staging": InstanceSettings(
        workers=2,
        max_cron_threads=1,
        limit_memory_hard=_GIB * 5 // 2,
        limit_memory_soft=_GIB * 2,
        limit_time_cpu=600,
        limit_time_real=1200,
        log_level="info",
    ),
    "development": InstanceSettings(
        workers=1,
        max_cron_threads=1,
        limit_memory_hard=_GIB * 3 // 2,
        limit_memory_soft=_GIB,
        limit_time_cpu=900,
        limit_time_real=1800,
        log_level="debug",
    ),
}

_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")
SLUG_MAX: Final = 50


def settings_for(environment_type: EnvironmentType) -> InstanceSettings:
    return _SETTINGS[environment_type]


def slug_candidates(name: str, suffixes: Sequence[str]) -> list[str]:
    """Slugs to try, in order, for an instance created without one: the name folded to a slug,
    then that with each (random, from the edge) suffix, which also pads a too short name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")
    plain = [base[:SLUG_MAX].rstrip("-")] if len(base) >= 3 else []
    return plain + [
        f"{base[: SLUG_MAX - len(suffix) - 1].rstrip('-') or 'odoo'}-{suffix}"
        for suffix in suffixes
    ]


def db_name_for(slug: str) -> str:
    """The Odoo database name: `[a-z][a-z0-9_]*`, as the workers require."""
    name = slug.replace("-", "_")
    return name if name[0].isalpha() else f"db_{name}"


def auto_subdomain(slug: str, base_domain: str) -> str:
    return f"{slug}.{base_domain}"
