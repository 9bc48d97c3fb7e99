"""The public shape of the log (issue 17): what the event stream and webhooks show of a
recorded event — a public name such as `instance.started`, camelCase data, secrets masked
exactly as the audit trail masks them — and which stored event types have a public name.

Never the raw stored event: internal events (operation steps, reservations, requests) have
no public name, and every `Sealed` value reads as MASK. Translation is a function of the log
alone, so a replayed or redelivered event always reads the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol
from uuid import UUID

import msgspec

from events.health import HealthObserved
from events.instance import (
    ActionFailed,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemovalForced,
    InstanceRemoved,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningFailed,
    RemovalAbandoned,
)
from events.metadata import EventMetadata
from events.operation import OperationFailed
from events.publishing import WireEvent
from events.registry import DomainEvent
from events.secrets import MASK, Sealed
from events.server import (
    ServerDeleted,
    ServerReachable,
    ServerRegistered,
    ServerUnreachable,
    ServerValidated,
    ServerValidationFailed,
)
from events.store import EventStore
from projections.health_samples import SPAN_SECONDS, Bucket, add_window
from projections.health_score import grade, stored_factors, total

# Stored event type → its public name, for the events that always have one.
_ALWAYS: Final[Mapping[type[DomainEvent], str]] = {
    InstanceCreated: "instance.created",
    InstanceProvisioned: "instance.provisioned",
    InstanceStarted: "instance.started",
    InstanceStopped: "instance.stopped",
    InstanceRestarted: "instance.restarted",
    InstanceUpdated: "instance.updated",
    InstanceRedeployed: "instance.redeployed",
    ProvisioningFailed: "instance.failed",
    ActionFailed: "instance.failed",
    RemovalAbandoned: "instance.failed",
    InstanceRemoved: "instance.deleted",
    InstanceRemovalForced: "instance.deleted",
    ServerRegistered: "server.created",
    ServerValidated: "server.active",
    ServerUnreachable: "server.unreachable",
    ServerReachable: "server.reachable",
    ServerDeleted: "server.deleted",
    OperationFailed: "operation.failed",
}
HEALTH_CHANGED: Final = "instance.health_changed"
# The events whose data decides: a failed validation is public when the server could not be
# reached (an `error` one ends in operation.failed); an observation when its status differs
# from the one before it (the observer also records unchanged heartbeats).
_SOMETIMES: Final[Mapping[type[DomainEvent], str]] = {
    ServerValidationFailed: "server.unreachable",
    HealthObserved: HEALTH_CHANGED,
}

PUBLIC_NAMES: Final[Mapping[str, str]] = {
    stored.event_type(): name for stored, name in {**_ALWAYS, **_SOMETIMES}.items()
}
"""Stored event type → the public name it may be shown under (the only stored types that
are ever shown: a consumer can leave every other type alone)."""

EVENT_NAMES: Final[tuple[str, ...]] = tuple(dict.fromkeys(PUBLIC_NAMES.values()))
"""Every public event name, for validating subscriptions and filters."""

# How far back the score of a health change is folded from: the observer writes at most one
# heartbeat per instance per few minutes besides status changes, so 24 hours of a stream is
# well under this many events (projections/health_samples.py drops older windows anyway).
_SCORE_HISTORY: Final = 2000
_REMEMBERED_STATUSES: Final = 100_000


class PublicEvent(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One event as integrations see it."""

    id: str
    position: int
    type: str
    resource_type: str
    resource_id: str
    org_id: str
    occurred_at: datetime
    data: dict[str, Any]


class Logged(Protocol):
    """What translation needs of a logged event (events.store.RecordedEvent has it, and so
    does `logged_from_wire` of an event taken from JetStream)."""

    @property
    def position(self) -> int: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> str: ...
    @property
    def metadata(self) -> str: ...
    @property
    def event_id(self) -> UUID: ...
    @property
    def recorded_at(self) -> datetime: ...


class WireLogged(msgspec.Struct, frozen=True):
    """A published event (events.publishing.WireEvent) in the shape translation reads."""

    position: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    data: str
    metadata: str
    event_id: UUID
    recorded_at: datetime


def logged_from_wire(wire: WireEvent) -> WireLogged:
    return WireLogged(
        position=wire.position,
        stream_id=wire.stream_id,
        version=wire.version,
        event_type=wire.type,
        schema_version=wire.schema_version,
        data=bytes(wire.data).decode(),
        metadata=bytes(wire.metadata).decode(),
        event_id=UUID(wire.event_id),
        recorded_at=datetime.fromisoformat(wire.recorded_at),
    )


_meta_decoder: Final = msgspec.json.Decoder(EventMetadata)


class PublicEvents:
    """Translates logged events; reads the log only for a health observation (the status
    before it, and the score's 24 hours)."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        # Health stream → (version, status) of the last observation translated: a reader that
        # goes through the log in order finds the one before each observation here.
        self._statuses: dict[str, tuple[int, str]] = {}

    async def of(self, logged: Logged) -> PublicEvent | None:
        """The public event, or None when the event is not one integrations see."""
        if logged.event_type not in PUBLIC_NAMES:
            return None
        event = self._store.registry.decode(logged.event_type, logged.schema_version, logged.data)
        if isinstance(event, HealthObserved):
            return await self._health(logged, event)
        name = _ALWAYS.get(type(event))
        if isinstance(event, ServerValidationFailed) and event.status == "unreachable":
            name = _SOMETIMES[ServerValidationFailed]
        if name is None:
            return None
        return _public(logged, name, *_resource(logged.stream_id), public_data(event))

    async def _health(self, logged: Logged, event: HealthObserved) -> PublicEvent | None:
        previous = await self._status_before(logged.stream_id, logged.version)
        if len(self._statuses) >= _REMEMBERED_STATUSES:
            self._statuses.clear()
        self._statuses[logged.stream_id] = (logged.version, event.status)
        if previous == event.status:
            return None
        # A change: the score needs the observations of the 24 hours before it.
        after = max(0, logged.version - _SCORE_HISTORY)
        before = await self._store.read_stream(logged.stream_id, after, logged.version - 1 - after)
        observed = [e for e in self._store.decode_all(before) if isinstance(e, HealthObserved)]
        score = _score(observed, event)
        data = {
            "instanceId": event.instance_id,
            "serverId": event.server_id,
            "status": event.status,
            "previousStatus": previous,
            "score": score,
            "grade": None if score is None else grade(score),
            "message": event.message,
            "httpStatus": event.http_status,
            "responseTimeMs": event.response_time_ms,
            "observedAt": msgspec.to_builtins(event.observed_at),
        }
        return _public(logged, HEALTH_CHANGED, "instance", event.instance_id, data)

    async def _status_before(self, stream_id: str, version: int) -> str | None:
        if version <= 1:
            return None
        known = self._statuses.get(stream_id)
        if known is not None and known[0] == version - 1:
            return known[1]
        before = self._store.decode_all(await self._store.read_stream(stream_id, version - 2, 1))
        return before[0].status if before and isinstance(before[0], HealthObserved) else None


def public_data(event: msgspec.Struct) -> dict[str, Any]:
    """An event's fields, camelCase, UNSET ones left out, every sealed value MASK."""
    return {
        _camel(name): _shown(getattr(event, name))
        for name in event.__struct_fields__
        if getattr(event, name) is not msgspec.UNSET
    }


def _shown(value: Any) -> Any:
    # Walks the typed event rather than its JSON: only field names become camelCase, never
    # the keys of a mapping such as envVars.
    if isinstance(value, Sealed):
        return MASK
    if isinstance(value, msgspec.Struct):
        return public_data(value)
    if isinstance(value, dict):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(item) for item in value]
    return msgspec.to_builtins(value)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _resource(stream_id: str) -> tuple[str, str]:
    kind, _, rest = stream_id.partition("-")
    return kind, rest


def _public(
    logged: Logged, name: str, resource_type: str, resource_id: str, data: dict[str, Any]
) -> PublicEvent:
    return PublicEvent(
        id=str(logged.event_id),
        position=logged.position,
        type=name,
        resource_type=resource_type,
        resource_id=resource_id,
        org_id=_meta_decoder.decode(logged.metadata).org_id,
        occurred_at=logged.recorded_at,
        data=data,
    )


def _score(earlier: Sequence[HealthObserved], event: HealthObserved) -> int | None:
    """The health score as of `event`, folded as the health projection folds it (windows
    older than 24 hours drop out of the buckets)."""
    since = event.observed_at - timedelta(seconds=SPAN_SECONDS + 300)
    buckets: list[Bucket] = []
    for seen in (*(e for e in earlier if e.observed_at > since), event):
        buckets = add_window(buckets, seen.window, seen.observed_at, seen.memory_limit_bytes)
    return total(stored_factors(buckets, event.observed_at))
