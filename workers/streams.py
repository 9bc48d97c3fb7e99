"""Reading a stream whole, and appending to it exactly once when its state still allows it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from events.errors import WrongExpectedVersion
from events.metadata import EventMetadata
from events.registry import DomainEvent, EventRegistry
from events.store import NO_STREAM, EventStore

_IDS: Final = uuid.UUID("3b8f0f5e-6c2d-4a7e-9a51-0d1c2e3f4a5b")


class Stream(msgspec.Struct, frozen=True):
    events: list[DomainEvent]
    version: int
    event_ids: frozenset[uuid.UUID]


async def read(store: EventStore, registry: EventRegistry, stream_id: str) -> Stream:
    recorded = await store.read_stream(stream_id)
    return Stream(
        events=registry.decode_all(recorded),
        version=recorded[-1].version if recorded else 0,
        event_ids=frozenset(r.event_id for r in recorded),
    )


def event_ids(key: str, count: int) -> list[uuid.UUID]:
    """Ids derived from `key` (e.g. "<operation id>/outcome"): an append repeated by a
    redelivered message carries the same ids, so it is recognised as done."""
    return [uuid.uuid5(_IDS, f"{key}#{n}") for n in range(count)]


async def append_once(
    store: EventStore,
    registry: EventRegistry,
    stream_id: str,
    events: Sequence[DomainEvent],
    metadata: EventMetadata,
    *,
    key: str,
    allowed: Callable[[list[DomainEvent]], bool],
) -> bool:
    """Append `events` unless they are there already (True) or the stream's events no longer
    allow them (False).

    The append names the exact version that was checked, so an event appended meanwhile (a
    removal overtaking a provisioning, say) makes it conflict; the stream is then read and
    checked again.
    """
    ids = event_ids(key, len(events))
    while True:
        stream = await read(store, registry, stream_id)
        if ids[0] in stream.event_ids:
            return True
        if not allowed(stream.events):
            return False
        try:
            await store.append(stream_id, stream.version or NO_STREAM, events, metadata, ids)
        except WrongExpectedVersion:
            continue
        return True
