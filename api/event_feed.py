"""The live feed behind `GET /api/events/stream`: one reader of the log per API process, fanned
out to each stream's bounded buffer, and a catch-up read for a stream that resumes.

Why one reader: N open streams must not make N queries per append. The reader takes the log in
the store's order ((transaction id, position), events.store's xmin rule), so nothing it passes
can later appear below its checkpoint. A stream that subscribes at the reader's checkpoint T
gets every event after T from the reader; a stream resuming from an earlier place C reads
(C, T] from the log itself, then its buffer. It delivers an event only when its place is past
the last one delivered, so the two sources neither leave a gap nor repeat one.

Why bounded: a client that reads slower than the log grows is cut off (its buffer overflows)
rather than holding memory or slowing the reader; it resumes with Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection
from typing import Final

import msgspec
import psycopg

from events.log_reads import read_range
from events.store import Checkpoint, EventStore, RecordedEvent
from events.wakeup import LogWakeup
from projections.public_events import PublicEvent, PublicEvents

log = logging.getLogger(__name__)

_BATCH: Final = 500
_POLL_SECONDS: Final = 1.0


class StreamFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which public events one stream shows: always one organization's."""

    org_id: str
    types: frozenset[str] = frozenset()
    resource_type: str | None = None
    resource_id: str | None = None
    # An API key scoped to instances sees only theirs (api/api_keys.py).
    instance_ids: frozenset[str] | None = None

    def shows(self, event: PublicEvent) -> bool:
        return (
            event.org_id == self.org_id
            and (not self.types or event.type in self.types)
            and (self.resource_type is None or event.resource_type == self.resource_type)
            and (self.resource_id is None or event.resource_id == self.resource_id)
            and (self.instance_ids is None or _instance_of(event) in self.instance_ids)
        )


def _instance_of(event: PublicEvent) -> str | None:
    if event.resource_type == "instance":
        return event.resource_id
    found = event.data.get("instanceId")
    return found if isinstance(found, str) else None


class Delivery(msgspec.Struct, frozen=True):
    """One public event at its place in the log, with its JSON made once for every stream."""

    checkpoint: Checkpoint
    event: PublicEvent
    json: str


class TooSlow(Exception):
    """The stream's buffer overflowed: its client reads slower than events arrive."""


class Subscription:
    """One open stream's buffer, filled by the feed's reader."""

    def __init__(self, shows: StreamFilter, capacity: int, since: Checkpoint) -> None:
        self.filter = shows
        self.since = since  # the reader's checkpoint when this subscribed
        self._capacity = capacity
        self._buffer: deque[Delivery] = deque()
        self._ready = asyncio.Event()
        self.overflowed = False

    def offer(self, delivery: Delivery) -> bool:
        """Buffer `delivery` if the stream shows it; False once the buffer has overflowed."""
        if not self.filter.shows(delivery.event):
            return True
        if len(self._buffer) >= self._capacity:
            self.overflowed = True
            self._ready.set()
            return False
        self._buffer.append(delivery)
        self._ready.set()
        return True

    async def next(self, idle_seconds: float) -> Delivery | None:
        """The next buffered delivery, or None after `idle_seconds` without one."""
        while not self._buffer:
            if self.overflowed:
                raise TooSlow()
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(idle_seconds):
                    await self._ready.wait()
            if not self._buffer and not self.overflowed:
                return None
        if self.overflowed:
            raise TooSlow()
        return self._buffer.popleft()


class LiveFeed:
    """The process's one reader of the log for open event streams."""

    def __init__(
        self,
        store: EventStore,
        public: PublicEvents,
        database_url: str,
        *,
        capacity: int,
        heartbeat: float,
        max_streams: int,
    ) -> None:
        self._store = store
        self._public = public
        self._wakeup = LogWakeup(database_url)
        self._capacity = capacity
        self.heartbeat = heartbeat  # seconds between comment lines on an idle stream
        self.max_streams = max_streams  # open streams per process
        self._checkpoint: Checkpoint | None = None
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._wanted = asyncio.Event()  # set when a stream subscribes

    @property
    def open_streams(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        """Make the reader ready for a new stream (a database that is down fails this, before
        a response has begun): started on the first stream, and moved to the head of the log
        when no stream is open (it does not read the log for nobody)."""
        async with self._starting:
            if self._task is None:
                self._checkpoint = await self._store.head()
                self._wakeup.start()
                self._task = asyncio.create_task(self._read(), name="event-stream-feed")
                return
        if not self._subscribers:
            head = await self._store.head()
            # Unless a stream subscribed meanwhile, at the old place the reader must go on from.
            if not self._subscribers and self._checkpoint is not None:
                self._checkpoint = max(self._checkpoint, head)

    def subscribe(self, shows: StreamFilter) -> Subscription:
        """A new stream's buffer, filled from the reader's checkpoint on (after `start`)."""
        if self._checkpoint is None:
            raise RuntimeError("the feed has not started")
        subscription = Subscription(shows, self._capacity, self._checkpoint)
        self._subscribers.add(subscription)
        self._wanted.set()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self._wakeup.stop()

    async def resolve(self, position: int) -> Checkpoint | None:
        """The place in the log of the event at `position` (what Last-Event-ID names)."""
        async with self._store.pool.connection() as conn:
            found = await read_range(conn, position - 1, position, 1)
        return found[0].checkpoint if found else None

    async def catch_up(
        self, subscription: Subscription, after: Checkpoint
    ) -> AsyncIterator[Delivery]:
        """What the stream shows of the log after `after` up to where it subscribed."""
        while after < subscription.since:
            batch = await self._store.read_all(after, _BATCH)
            if not batch:
                return
            for recorded in batch:
                delivery = await self._delivery(recorded)
                if delivery is not None and subscription.filter.shows(delivery.event):
                    yield delivery
                after = recorded.checkpoint

    async def _read(self) -> None:
        while True:
            try:
                await self._read_once()
            except asyncio.CancelledError:
                raise
            except psycopg.Error as e:
                # PostgreSQL restarting: the streams stay open and the reader takes up from its
                # checkpoint, so nothing is missed.
                log.warning("the event stream feed could not read the log (%s); retrying", e)
                await asyncio.sleep(_POLL_SECONDS)

    async def _read_once(self) -> None:
        if not self._subscribers:
            self._wanted.clear()
            await self._wanted.wait()
            return
        assert self._checkpoint is not None
        # A batch no larger than half a buffer: a stream that keeps up drains its buffer while
        # the next batch is read, so only one that falls behind overflows.
        size = min(_BATCH, max(1, self._capacity // 2))
        batch = await self._store.read_all(self._checkpoint, size)
        for recorded in batch:
            delivery = await self._delivery(recorded)
            if delivery is not None:
                for subscription in list(self._subscribers):
                    if not subscription.offer(delivery):
                        self._subscribers.discard(subscription)
            # max: `start` may have moved the checkpoint on while the last stream had gone.
            self._checkpoint = max(self._checkpoint, recorded.checkpoint)
        if len(batch) < size:
            await self._wakeup.wait(_POLL_SECONDS)

    async def _delivery(self, recorded: RecordedEvent) -> Delivery | None:
        event = await self._public.of(recorded)
        if event is None:
            return None
        return Delivery(recorded.checkpoint, event, msgspec.json.encode(event).decode())


def filter_for(
    org_id: str,
    types: Collection[str],
    resource_type: str | None,
    resource_id: str | None,
    instance_ids: frozenset[str] | None,
) -> StreamFilter:
    return StreamFilter(
        org_id=org_id,
        types=frozenset(types),
        resource_type=resource_type,
        resource_id=resource_id,
        instance_ids=instance_ids,
    )
