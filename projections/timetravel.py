"""Time travel: an instance as it was at a past moment, folded from its own events with the
same Folder the projection uses."""

from __future__ import annotations

from datetime import datetime
from itertools import takewhile

from events.instance import instance_stream
from events.store import EventStore, RecordedEvent
from projections.instances import INSTANCES, InstanceView
from projections.runtime.fold import fold

_PAGE = 10_000


async def instance_as_of(
    store: EventStore, org_id: str, instance_id: str, as_of: datetime
) -> InstanceView | None:
    """The instance from its events recorded at or before `as_of` (timezone-aware); None if
    it did not exist then, was removed by then, or belongs to another organization."""
    stream_id = instance_stream(instance_id)
    past: list[RecordedEvent] = []
    while True:
        page = await store.read_stream(stream_id, after_version=len(past), limit=_PAGE)
        # A prefix of the stream: a row is only ever the fold of a gap-free start.
        known = list(takewhile(lambda e: e.recorded_at <= as_of, page))
        past.extend(known)
        if len(page) < _PAGE or len(known) < len(page):
            break
    row = fold(INSTANCES, past, store.registry)
    return row if row is not None and row.org_id == org_id else None
