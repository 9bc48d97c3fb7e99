"""Read-model views and stored events as wire DTOs (secrets opened or masked for the caller)."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from api.auth import Principal
from api.wire_instances import Instance
from api.wire_reads import AuditItem, Health, Operation, StoredEvent
from api.wire_servers import Server
from events.instance import instance_stream
from events.secrets import MASK, Vault, mask_sealed
from events.store import RecordedEvent
from projections.audit import AuditEntry
from projections.health import HealthView
from projections.instances import InstanceView
from projections.operations import OperationView
from projections.servers import ServerView

_json: Final = msgspec.json.Decoder(dict[str, Any])


async def instance(
    view: InstanceView, principal: Principal, vault: Vault, *, reveal: bool = False
) -> Instance:
    """envVars values are masked for every caller, unless a caller who may manage instances
    asked for them (`reveal`, recorded by the route: API.md, second wave). Answers that
    carried them by default (create, get, list, PATCH, control, idempotent replays) spread
    the values to logs, proxies and caches of anyone holding a manage token."""
    if reveal and principal.may("manage:instances"):
        env_vars = await vault.open_all(instance_stream(view.id), view.env_vars)
    else:
        env_vars = dict.fromkeys(view.env_vars, MASK)
    shown = msgspec.structs.replace(view, env_vars=env_vars)
    return msgspec.convert(shown, Instance, from_attributes=True)


def server(view: ServerView) -> Server:
    return msgspec.convert(view, Server, from_attributes=True)


def health(view: HealthView | None, instance_id: str) -> Health:
    if view is None:
        return Health(
            instance_id=instance_id,
            status="unknown",
            container_state=None,
            http_status=None,
            response_time_ms=None,
            restart_count=None,
            oom_killed=None,
            memory_bytes=None,
            memory_limit_bytes=None,
            cpu_percent=None,
            last_seen_at=None,
            last_checked_at=None,
            message=None,
        )
    return msgspec.convert(view, Health, from_attributes=True)


def operation(view: OperationView) -> Operation:
    return msgspec.convert(view, Operation, from_attributes=True)


def audit_item(entry: AuditEntry) -> AuditItem:
    masked = msgspec.structs.replace(
        entry,
        before_state=mask_sealed(entry.before_state),
        after_state=mask_sealed(entry.after_state),
    )
    return msgspec.convert(masked, AuditItem, from_attributes=True)


def stored_event(event: RecordedEvent) -> StoredEvent:
    return StoredEvent(
        position=event.position,
        stream_id=event.stream_id,
        version=event.version,
        type=event.event_type,
        data=mask_sealed(_json.decode(event.data)),
        metadata=_json.decode(event.metadata),
        recorded_at=event.recorded_at,
    )
