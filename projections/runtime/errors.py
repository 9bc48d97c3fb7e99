"""Errors of the projections: an event that cannot be applied, a malformed cursor."""

from __future__ import annotations

from events.store import RecordedEvent


class CannotApply(ValueError):
    """An event does not fit the row it should change (e.g. a change before the creation)."""


class InvalidCursor(ValueError):
    """A pagination cursor that odoofleet did not hand out (or that was tampered with)."""


class PoisonEvent(RuntimeError):
    """An event its projection cannot apply: the projection stops there until it is fixed
    (never a silent skip)."""

    def __init__(self, projection: str, event: RecordedEvent, cause: BaseException) -> None:
        self.projection = projection
        self.position = event.position
        self.event_type = event.event_type
        self.stream_id = event.stream_id
        super().__init__(
            f"projection {projection!r} cannot apply {event.event_type} at position"
            f" {event.position} (stream {event.stream_id}@{event.version}):"
            f" {type(cause).__name__}: {cause}"
        )
