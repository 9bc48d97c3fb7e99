"""Event types by name and schema version, and the upcasters that bring old shapes forward."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec

from events.errors import UnknownEventType


class DomainEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event: a past-tense fact. Bump `schema_version` when the shape changes
    and register an upcaster from the old version (history is never rewritten)."""

    schema_version: ClassVar[int] = 1

    @classmethod
    def event_type(cls) -> str:
        return cls.__name__


class Stored(Protocol):
    """What decoding needs of a stored event (events.store.RecordedEvent has it)."""

    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> str: ...


E = TypeVar("E", bound=type[DomainEvent])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_encoder = msgspec.json.Encoder()


def encode_event(event: DomainEvent) -> str:
    return _encoder.encode(event).decode()


class EventRegistry:
    """Maps a stored (type, schema version) back to its current Struct."""

    def __init__(self, types: Iterable[type[DomainEvent]] = ()) -> None:
        self._types: dict[str, type[DomainEvent]] = {}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        for event_type in types:
            self.register(event_type)

    def register(self, event_type: E) -> E:
        name = event_type.event_type()
        if name in self._types and self._types[name] is not event_type:
            raise ValueError(f"event type {name!r} registered twice")
        self._types[name] = event_type
        self._decoders[name] = msgspec.json.Decoder(event_type)
        return event_type

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register `fn` turning the data of `event_type` v`from_version` into v+1."""

        def add(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return add

    def names(self) -> list[str]:
        return sorted(self._types)

    def type_of(self, name: str) -> type[DomainEvent]:
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventType(name, 0) from None

    def decode_all(self, stored: Iterable[Stored]) -> list[DomainEvent]:
        """Stored events decoded (and upcast), in their order."""
        return [self.decode(e.event_type, e.schema_version, e.data) for e in stored]

    def decode(self, event_type: str, schema_version: int, data: bytes | str) -> DomainEvent:
        cls = self._types.get(event_type)
        if cls is None:
            raise UnknownEventType(event_type, schema_version)
        if schema_version == cls.schema_version:
            decoded: DomainEvent = self._decoders[event_type].decode(data)
            return decoded
        raw: dict[str, Any] = msgspec.json.decode(data)
        version = schema_version
        while version < cls.schema_version:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise UnknownEventType(event_type, version)
            raw = step(raw)
            version += 1
        if version != cls.schema_version:
            raise UnknownEventType(event_type, schema_version)
        return msgspec.convert(raw, cls)
