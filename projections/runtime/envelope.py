"""An event as a projection sees it: decoded data plus the recorded facts around it."""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from events.metadata import EventMetadata
from events.registry import DomainEvent, EventRegistry
from events.store import RecordedEvent

_meta_decoder: Final = msgspec.json.Decoder(EventMetadata)


class Envelope:
    """A recorded event and its decoded data; the metadata is decoded on first use."""

    __slots__ = ("_meta", "event", "recorded")

    def __init__(self, recorded: RecordedEvent, event: DomainEvent) -> None:
        self.recorded = recorded
        self.event = event
        self._meta: EventMetadata | None = None

    @classmethod
    def decode(cls, registry: EventRegistry, recorded: RecordedEvent) -> Envelope:
        event = registry.decode(recorded.event_type, recorded.schema_version, recorded.data)
        return cls(recorded, event)

    @property
    def meta(self) -> EventMetadata:
        if self._meta is None:
            self._meta = _meta_decoder.decode(self.recorded.metadata)
        return self._meta

    @property
    def version(self) -> int:
        return self.recorded.version

    @property
    def at(self) -> datetime:
        return self.recorded.recorded_at
