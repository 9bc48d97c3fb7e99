"""Folding streams into rows: one row per stream, each event applied once, in version order.

A row remembers the stream version it reflects. An event at or below that version was
applied already and is skipped, which makes re-delivery harmless. An event above the next
version means the log handed over a later event first. EventStore prevents that (each append
takes its streams' locks before it writes, so a stream's versions follow log order), but rows
written around it, or by a version before that fix, could; so the missing ones are read from
the stream and applied before it: a row is always the fold of a gap-free prefix of its stream.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec
from psycopg import AsyncConnection

from events.catalog import stream_type
from events.log_reads import stream_between
from events.registry import DomainEvent, EventRegistry
from events.store import EventStore, RecordedEvent
from projections.runtime.envelope import Envelope
from projections.runtime.errors import CannotApply


class Row(msgspec.Struct, frozen=True, kw_only=True):
    """A folded row: `version` is the version of the last event of its stream applied."""

    version: int


R = TypeVar("R", bound=Row)
Evolve = Callable[[Any, Any, Envelope], Any]
"""`(row | None, event, envelope) -> row | None` (None deletes the row)."""
Transition = Callable[[R | None, R | None, Envelope], None]


def need(row: R | None, env: Envelope) -> R:
    """The row an event changes; an event that changes a row that is not there is poison."""
    if row is None:
        raise _no_row(env.recorded)
    return row


def _no_row(recorded: RecordedEvent) -> CannotApply:
    return CannotApply(f"{recorded.event_type} on {recorded.stream_id}, which has no row")


@dataclass(frozen=True)
class Folder(Generic[R]):
    """How the events of one stream type fold into a row: a table from event type to a small
    function. Events of the stream it does not list only move the row's version."""

    stream_type: str
    row_type: type[R]
    evolve: Mapping[type[DomainEvent], Evolve]
    _by_name: dict[str, Evolve] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = {event_type.event_type(): fn for event_type, fn in self.evolve.items()}
        object.__setattr__(self, "_by_name", names)

    def apply(
        self, row: R | None, recorded: RecordedEvent, registry: EventRegistry
    ) -> tuple[R | None, Envelope | None]:
        """The row after `recorded`, and the decoded event if a function handled it."""
        fn = self._by_name.get(recorded.event_type)
        if fn is None:
            if row is None:
                raise _no_row(recorded)
            return msgspec.structs.replace(row, version=recorded.version), None
        env = Envelope.decode(registry, recorded)
        after: R | None = fn(row, env.event, env)
        if after is not None:
            after = msgspec.structs.replace(after, version=recorded.version)
        return after, env


def fold(folder: Folder[R], events: Sequence[RecordedEvent], registry: EventRegistry) -> R | None:
    """The row of one stream from its events in order (time travel, refolds)."""
    row: R | None = None
    for recorded in events:
        row, _ = folder.apply(row, recorded, registry)
    return row


async def fold_stream(
    store: EventStore, folder: Folder[R], stream_id: str, *, up_to_version: int | None = None
) -> R | None:
    """The row of one stream folded from the store now (up to a version: as a write left it),
    by the read model's own Folder: exact right after a write, without waiting for the
    projection."""
    return fold(folder, await store.read_stream(stream_id, limit=up_to_version), store.registry)


class RowStore(Protocol[R]):
    """Where a projection keeps its rows, one per stream id."""

    async def load(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> dict[str, R]:
        """The stored rows of `stream_ids` (absent ones are left out)."""

    async def save(self, conn: AsyncConnection[Any], rows: Mapping[str, R | None]) -> None:
        """Upsert the rows; None deletes the row of that stream."""

    async def forget(self, conn: AsyncConnection[Any], stream_ids: Collection[str]) -> None:
        """Delete the rows of `stream_ids` (a replay folds them again from the start)."""


async def fold_batch(
    conn: AsyncConnection[Any],
    events: Sequence[RecordedEvent],
    folders: Mapping[str, Folder[R]],
    store: RowStore[R],
    registry: EventRegistry,
    on_transition: Transition[R] | None = None,
) -> None:
    """Apply a batch of the log to the rows of the streams `folders` cover, one write per
    row: rows are loaded once, folded in memory, and saved together."""
    prefixes = tuple(f"{kind}-" for kind in folders)
    mine = [e for e in events if e.stream_id.startswith(prefixes)]
    if not mine:
        return
    rows: dict[str, R | None] = dict(await store.load(conn, {e.stream_id for e in mine}))
    versions = {stream_id: row.version for stream_id, row in rows.items() if row is not None}
    changed: set[str] = set()
    for recorded in mine:
        known = versions.get(recorded.stream_id, 0)
        if recorded.version <= known:
            continue
        todo = [recorded]
        if recorded.version > known + 1:
            todo = await _missing(conn, recorded, known) + todo
        folder = folders[stream_type(recorded.stream_id)]
        for item in todo:
            before = rows.get(item.stream_id)
            after, env = folder.apply(before, item, registry)
            rows[item.stream_id] = after
            versions[item.stream_id] = item.version
            if on_transition is not None and env is not None:
                on_transition(before, after, env)
        changed.add(recorded.stream_id)
    await store.save(conn, {stream_id: rows[stream_id] for stream_id in changed})


async def _missing(
    conn: AsyncConnection[Any], recorded: RecordedEvent, known: int
) -> list[RecordedEvent]:
    found = await stream_between(conn, recorded.stream_id, known, recorded.version)
    if [e.version for e in found] != list(range(known + 1, recorded.version)):
        raise CannotApply(
            f"{recorded.stream_id}: versions {known + 1}..{recorded.version - 1} are missing"
        )
    return found
