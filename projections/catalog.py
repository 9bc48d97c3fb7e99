"""Every projection odoofleet runs, by name."""

from __future__ import annotations

from typing import Final

from events.registry import EventRegistry
from projections.api_keys import API_KEYS
from projections.audit import AuditProjection
from projections.backups import BACKUPS, DESTINATIONS, SCHEDULES
from projections.domains import DOMAINS
from projections.health import HEALTH
from projections.instances import BACKUP_FIELDS, HEALTH_FIELDS, INSTANCES
from projections.operations import OPERATIONS
from projections.runtime.projection import FoldProjection, Projection
from projections.runtime.tables import TableRows
from projections.servers import SERVERS
from projections.webhooks import WEBHOOKS

NAMES: Final = (
    "instances",
    "servers",
    "operations",
    "health",
    "audit",
    "webhooks",
    "api_keys",
    "domains",
    "backups",
    "backup_destinations",
    "backup_schedules",
)
READS: Final[dict[str, tuple[str, ...]]] = {
    "instances": (INSTANCES.stream_type,),
    "servers": (SERVERS.stream_type,),
    "operations": (OPERATIONS.stream_type,),
    "health": (HEALTH.stream_type,),
    "audit": AuditProjection.stream_types,
    "webhooks": (WEBHOOKS.stream_type,),
    "api_keys": (API_KEYS.stream_type,),
    "domains": (DOMAINS.stream_type,),
    "backups": (BACKUPS.stream_type,),
    "backup_destinations": (DESTINATIONS.stream_type,),
    "backup_schedules": (SCHEDULES.stream_type,),
}
"""The kinds of stream each projection reads."""


def build_projections(registry: EventRegistry) -> dict[str, Projection]:
    projections: list[Projection] = [
        FoldProjection(
            "instances",
            INSTANCES,
            TableRows(
                "instances",
                "id",
                "instance",
                INSTANCES.row_type,
                exclude=(*HEALTH_FIELDS, *BACKUP_FIELDS),
            ),
            registry,
        ),
        FoldProjection(
            "servers",
            SERVERS,
            TableRows("servers", "id", "server", SERVERS.row_type),
            registry,
        ),
        FoldProjection(
            "operations",
            OPERATIONS,
            TableRows("operations", "id", "operation", OPERATIONS.row_type),
            registry,
        ),
        FoldProjection(
            "health",
            HEALTH,
            TableRows("health", "instance_id", "health", HEALTH.row_type),
            registry,
        ),
        AuditProjection(registry),
        FoldProjection(
            "webhooks",
            WEBHOOKS,
            TableRows("webhook_endpoints", "id", "webhook", WEBHOOKS.row_type),
            registry,
        ),
        FoldProjection(
            "api_keys",
            API_KEYS,
            TableRows("api_keys", "id", "apikey", API_KEYS.row_type),
            registry,
        ),
        FoldProjection(
            "domains", DOMAINS, TableRows("domains", "id", "domain", DOMAINS.row_type), registry
        ),
        FoldProjection(
            "backups", BACKUPS, TableRows("backups", "id", "backup", BACKUPS.row_type), registry
        ),
        FoldProjection(
            "backup_destinations",
            DESTINATIONS,
            TableRows("backup_destinations", "id", "backupdest", DESTINATIONS.row_type),
            registry,
        ),
        FoldProjection(
            "backup_schedules",
            SCHEDULES,
            TableRows("backup_schedules", "instance_id", "backupschedule", SCHEDULES.row_type),
            registry,
        ),
    ]
    return {projection.name: projection for projection in projections}


def select(projections: dict[str, Projection], names: tuple[str, ...] | None) -> list[Projection]:
    """The named projections (all when `names` is None); an unknown name is an error."""
    unknown = sorted(set(names or ()) - set(projections))
    if unknown:
        raise KeyError(f"no projection named {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return [projections[name] for name in (names or NAMES)]
