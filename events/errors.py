"""Typed errors of the event store."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base class of the event store's own errors."""


class WrongExpectedVersion(EventStoreError):
    """An append's expected version did not match the stream's actual version."""

    def __init__(self, stream_id: str, expected: int | str, actual: int | None) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        shown = "no stream" if actual is None else actual
        super().__init__(f"stream {stream_id!r}: expected version {expected}, actual {shown}")


class DuplicateEventId(EventStoreError):
    """An event id is already stored, in another stream or at a different place."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event id {event_id} is already stored elsewhere")


class UnknownEventType(EventStoreError):
    def __init__(self, event_type: str, schema_version: int) -> None:
        self.event_type = event_type
        self.schema_version = schema_version
        super().__init__(f"no event type {event_type!r} v{schema_version} is registered")
