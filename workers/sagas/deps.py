"""What every saga is given: the event store, the Vault, the SSH runner and its settings,
and the triggering event decoded with the metadata its own events will carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec

from events.metadata import EventMetadata, system_actor
from events.publishing import WireEvent
from events.registry import DomainEvent
from events.secrets import Vault
from events.store import EventStore
from workers.sagas.readiness import Patience
from workers.server.layout import DEFAULT_ROOT
from workers.ssh.runner import SshRunner

GIB: Final = 2**30


class SagaConfig(msgspec.Struct, frozen=True, kw_only=True):
    root: str = DEFAULT_ROOT
    # First start of an Odoo colour may take minutes (the image's start_period is 90s).
    readiness: Patience = Patience(timeout=300.0, interval=2.0)
    stopping: Patience = Patience(timeout=120.0, interval=1.0)
    server_wait: Patience = Patience(timeout=600.0, interval=1.0)
    lock_timeout: float = 900.0
    lock_poll: float = 0.1
    connect_timeout: float = 10.0
    compose_limit: float = 900.0  # `compose up` may pull images
    create_db_limit: float = 1800.0  # `odoo -i base` on a slow disk
    min_disk_free_bytes: int = 5 * GIB
    # The pauses before a failed teardown is tried again, one per retry; then it is abandoned.
    removal_retries: tuple[float, ...] = (5.0, 30.0, 120.0)


@dataclass(frozen=True)
class SagaDeps:
    store: EventStore  # it holds the registry that decodes what it reads
    vault: Vault
    runner: SshRunner
    conninfo: str  # for the operations' own lock sessions (workers/runtime/slots.py)
    worker: str
    config: SagaConfig


@dataclass(frozen=True)
class Trigger:
    """The event a saga reacts to. `metadata` is for the saga's own events: the system actor,
    the trigger's organization and correlation id (so a request can be followed into its
    saga), and the trigger as their cause."""

    event: DomainEvent
    event_id: str
    stream_id: str
    origin: EventMetadata
    metadata: EventMetadata


def decode_trigger(deps: SagaDeps, wire: WireEvent) -> Trigger:
    origin = msgspec.json.decode(wire.metadata, type=EventMetadata)
    return Trigger(
        event=deps.store.registry.decode(wire.type, wire.schema_version, bytes(wire.data)),
        event_id=wire.event_id,
        stream_id=wire.stream_id,
        origin=origin,
        metadata=EventMetadata(
            actor=system_actor(deps.worker),
            org_id=origin.org_id,
            correlation_id=origin.correlation_id,
            causation_id=wire.event_id,
        ),
    )


def trigger_ids(trigger: Trigger) -> dict[str, str | None]:
    """The ids that tie a saga's log lines to the request that caused it."""
    return {
        "correlation_id": trigger.origin.correlation_id,
        "operation_id": getattr(trigger.event, "operation_id", None),
        "server_id": getattr(trigger.event, "server_id", None),
    }
