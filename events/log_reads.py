"""Reads of the ordered log beyond the store's own (`read_all_on`, `read_stream`): ranges of
positions, streams up to a checkpoint, readers' lag, and whether readers have reached an event.

Each takes a connection the caller holds, so a projector reads inside the transaction that
writes its rows and checkpoint. With events/store.py, the only SQL over the `events` table
(tests/test_log_ownership.py): the xmin / (tx_id, position) rule lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

import msgspec
from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from events.store import RECORDED_COLUMNS, Checkpoint, RecordedEvent

_LAST_POSITION: Final = b"SELECT coalesce(max(position), 0) FROM events"

_COUNT: Final = b"SELECT count(*) FROM events"
# A bound on position costs a third more than none over the whole log (a rebuild's total).
_COUNT_RANGE: Final = _COUNT + b" WHERE position BETWEEN %s AND %s"

# Position order, without the xmin rule: an operator's range is taken as it stands now, not
# followed, so an event committing later below `until` is simply not in it.
_RANGE: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events WHERE position > %s AND position <= %s"
    " ORDER BY position LIMIT %s"
).encode()

_STREAMS_IN_RANGE: Final = (
    b"SELECT DISTINCT stream_id FROM events WHERE position BETWEEN %s AND %s"
    b" AND split_part(stream_id, '-', 1) = ANY(%s)"
)

_STREAM_BETWEEN: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events"
    " WHERE stream_id = %s AND version > %s AND version < %s ORDER BY version"
).encode()

_STREAMS_UP_TO: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events WHERE stream_id = ANY(%s)"
    " AND (tx_id, position) <= (%s::text::xid8, %s) ORDER BY events.tx_id, events.position"
).encode()

# The newest events a reader may take now (store.py, the xmin rule), newest first.
_NEWEST: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events"
    " WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY events.tx_id DESC, events.position DESC LIMIT %s"
).encode()

# Lag counts every committed event past the checkpoint, those the xmin rule still hides too:
# they are what the reader has yet to take.
_LAG_AFTER: Final = (
    b"SELECT count(*), coalesce(extract(epoch FROM now() - min(recorded_at)), 0) FROM events"
    b" WHERE (tx_id, position) > (%s::text::xid8, %s)"
)
_READER_LAGS: Final = (
    b"SELECT c.name, count(e.position),"
    b" coalesce(extract(epoch FROM now() - min(e.recorded_at)), 0)"
    b" FROM checkpoints c LEFT JOIN events e ON (e.tx_id, e.position) > (c.tx_id, c.position)"
    b" GROUP BY c.name ORDER BY c.name"
)

# How many of the named readers reflect everything up to the event at %(position)s: their
# checkpoint is at or past the event's place in the log ((tx_id, position) is the order readers
# take events in), or no event of a stream type they read lies between the two (a projection
# saves its checkpoint past other streams' events only every so often).
_REACHED: Final = (
    b"SELECT count(*) FROM events e, checkpoints c,"
    b" unnest(%(names)s::text[], %(kinds)s::text[]) AS w(name, kinds)"
    b" WHERE e.position = %(position)s AND c.name = w.name"
    b" AND ((c.tx_id, c.position) >= (e.tx_id, e.position) OR NOT EXISTS ("
    b"  SELECT 1 FROM events x WHERE x.tx_id BETWEEN c.tx_id AND e.tx_id"
    b"  AND (x.tx_id, x.position) > (c.tx_id, c.position)"
    b"  AND (x.tx_id, x.position) <= (e.tx_id, e.position)"
    b"  AND split_part(x.stream_id, '-', 1) = ANY(string_to_array(w.kinds, ','))))"
)

_NO_END: Final = 2**63 - 1

# The next `limit` events past a checkpoint (the xmin rule, as `read_all_on`), but only those
# of some stream types come back, plus the last one (its place is the batch's end) and, on each
# row, how many the batch held: a rebuild walks the whole log, and most of it is other streams'.
_OF_TYPES_ONLY: Final = (
    b"SELECT position, tx_id::text::bigint, stream_id, version, event_type, schema_version,"
    b" CASE WHEN mine THEN data::text ELSE '{}' END,"
    b" CASE WHEN mine THEN metadata::text ELSE '{}' END, event_id, recorded_at, n"
    b" FROM (SELECT e.*, split_part(e.stream_id, '-', 1) = ANY(%(types)s) AS mine,"
    b"  count(*) OVER () AS n, lead(e.position) OVER (ORDER BY e.tx_id, e.position) IS NULL AS last"
    b"  FROM (SELECT * FROM events WHERE (tx_id, position) > (%(tx)s::text::xid8, %(pos)s)"
    b"   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())"
    b"   ORDER BY events.tx_id, events.position LIMIT %(limit)s) e) b"
    b" WHERE mine OR last ORDER BY b.tx_id, b.position"
)

# A rebuild's read of whole streams (`read_kind_by_stream`): one kind's events up to a
# checkpoint, stream after stream, each stream's in version order. Stream ids are
# `<kind>-<id>`, so in byte order one kind's streams lie together between `<kind>-` and
# `<kind>.` and the (stream_id, version) index walks them and nothing else.
_KIND_BY_STREAM: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events"
    " WHERE stream_id >= %(first)s AND stream_id < %(past)s"
    " AND (stream_id, version) > (%(stream)s, %(version)s)"
    " AND (tx_id, position) <= (%(tx)s::text::xid8, %(pos)s)"
    " ORDER BY stream_id, version LIMIT %(limit)s"
).encode()
_NO_SORT: Final = b"SET LOCAL enable_sort = off"

# The collation stream ids sort by: the column's own, or the database's default (ICU or libc,
# `datlocprovider`; read through to_jsonb, as servers before PostgreSQL 15 have no such column).
_STREAM_ID_COLLATION: Final = (
    b"SELECT CASE WHEN a.attcollation = 'pg_catalog.default'::regcollation"
    b"  THEN coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') || ':' || d.datcollate"
    b"  ELSE 'c:' || c.collcollate END"
    b" FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation, pg_database d"
    b" WHERE a.attrelid = 'events'::regclass AND a.attname = 'stream_id'"
    b" AND d.datname = current_database()"
)
_BYTE_ORDER: Final = frozenset({"c:c", "c:posix", "c:c.utf-8", "c:c.utf8"})


class Lag(msgspec.Struct, frozen=True):
    """What a reader has yet to take: how many events, and the age of the oldest (seconds)."""

    events: int = 0
    seconds: float = 0.0


class ReaderLag(msgspec.Struct, frozen=True):
    reader: str
    lag: Lag


class Slice(msgspec.Struct, frozen=True):
    """Part of the log as one reader needs it: the events of its stream types, where the part
    ends, and how many events it spans (those of other streams too)."""

    events: list[RecordedEvent]
    end: Checkpoint
    count: int


async def last_position(conn: AsyncConnection[Any]) -> int:
    """The highest position handed out to a committed event (0: an empty log)."""
    cur = await conn.execute(_LAST_POSITION)
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def count_all(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute(_COUNT)
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def count_range(conn: AsyncConnection[Any], first: int, last: int | None) -> int:
    """How many events sit at positions `first`..`last` (inclusive; None: the newest)."""
    cur = await conn.execute(_COUNT_RANGE, (first, _NO_END if last is None else last))
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def read_range(
    conn: AsyncConnection[Any], after: int, until: int | None, limit: int
) -> list[RecordedEvent]:
    """The next `limit` events at positions after `after` up to `until` (inclusive; None: the
    newest), in position order."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_RANGE, (after, _NO_END if until is None else until, limit))
    return [RecordedEvent(*row) for row in await cur.fetchall()]


async def streams_in_range(
    conn: AsyncConnection[Any], first: int, last: int | None, of_types: Collection[str]
) -> list[str]:
    """The ids, sorted, of the streams of `of_types` with an event at positions
    `first`..`last` (inclusive; None: the newest)."""
    params = (first, _NO_END if last is None else last, list(of_types))
    cur = await conn.execute(_STREAMS_IN_RANGE, params)
    return sorted(str(row[0]) for row in await cur.fetchall())


async def read_of_types(
    conn: AsyncConnection[Any], after: Checkpoint, limit: int, of_types: Collection[str]
) -> Slice:
    """The next `limit` events a reader may take past `after` (as `read_all_on`), only those
    of `of_types` decoded; the last one is in `events` too, with `{}` as data and metadata if
    it is of another type. An empty slice ends at `after`."""
    cur = conn.cursor(row_factory=tuple_row, binary=True)
    params = {"tx": str(after.tx_id), "pos": after.position, "limit": limit}
    await cur.execute(_OF_TYPES_ONLY, {**params, "types": list(of_types)})
    rows = await cur.fetchall()
    if not rows:
        return Slice([], after, 0)
    events = [RecordedEvent(*row[:-1]) for row in rows]
    return Slice(events, events[-1].checkpoint, int(rows[-1][-1]))


async def stream_ids_sort_bytewise(conn: AsyncConnection[Any]) -> bool:
    """Whether stream ids sort byte by byte (a C collation): `read_kind_by_stream` needs it.
    Other collations may interleave kinds (`backup-…` among `backupdest-…`)."""
    cur = await conn.execute(_STREAM_ID_COLLATION)
    row = await cur.fetchone()
    return row is not None and str(row[0]).lower() in _BYTE_ORDER


async def read_kind_by_stream(
    conn: AsyncConnection[Any],
    kind: str,
    after: tuple[str, int],
    upto: Checkpoint,
    limit: int,
) -> list[RecordedEvent]:
    """The next `limit` events of the streams of `kind` that a reader whose checkpoint is
    `upto` has taken, in (stream id, version) order past `after` (stream id, version; start
    with ("", 0)). Only where `stream_ids_sort_bytewise`."""
    params = {
        "first": f"{kind}-",
        "past": f"{kind}.",
        "stream": after[0],
        "version": after[1],
        "tx": str(upto.tx_id),
        "pos": upto.position,
        "limit": limit,
    }
    # An ordered walk of the index, whatever the statistics say: without them (a log just
    # loaded) PostgreSQL guessed a few hundred rows and sorted all of a kind for each chunk.
    async with conn.transaction():
        await conn.execute(_NO_SORT)
        cur = conn.cursor(row_factory=tuple_row, binary=True)
        await cur.execute(_KIND_BY_STREAM, params)
        return [RecordedEvent(*row) for row in await cur.fetchall()]


async def stream_between(
    conn: AsyncConnection[Any], stream_id: str, after_version: int, before_version: int
) -> list[RecordedEvent]:
    """The events of one stream strictly between two versions, in version order."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_STREAM_BETWEEN, (stream_id, after_version, before_version))
    return [RecordedEvent(*row) for row in await cur.fetchall()]


async def streams_up_to(
    conn: AsyncConnection[Any], stream_ids: Collection[str], upto: Checkpoint
) -> list[RecordedEvent]:
    """Every event of `stream_ids` at or before `upto`, in log order: what a reader whose
    checkpoint is `upto` has taken of them."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_STREAMS_UP_TO, (list(stream_ids), str(upto.tx_id), upto.position))
    return [RecordedEvent(*row) for row in await cur.fetchall()]


async def newest(conn: AsyncConnection[Any], count: int) -> list[RecordedEvent]:
    """The newest `count` events a reader may take now, in log order; a reader that goes on
    from the last of them (`read_all_on`) misses none."""
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_NEWEST, (max(count, 0),))
    return [RecordedEvent(*row) for row in reversed(await cur.fetchall())]


async def lag_after(conn: AsyncConnection[Any], checkpoint: Checkpoint) -> Lag:
    cur = await conn.execute(_LAG_AFTER, (str(checkpoint.tx_id), checkpoint.position))
    row = await cur.fetchone()
    return Lag() if row is None else Lag(int(row[0]), float(row[1]))


async def reader_lags(conn: AsyncConnection[Any]) -> list[ReaderLag]:
    """The lag of every named checkpoint (relay, projections, rebuilds under way), by name."""
    cur = await conn.execute(_READER_LAGS)
    return [ReaderLag(str(n), Lag(int(c), float(s))) for n, c, s in await cur.fetchall()]


async def readers_reached(
    conn: AsyncConnection[Any], position: int, readers: Mapping[str, Collection[str]]
) -> bool:
    """Whether every reader in `readers` (checkpoint name → the stream types it reads)
    reflects the log up to the event at `position`: took it and all before it, or has yet to
    take no event of its stream types up to there. False if no event is at `position`."""
    params = {
        "position": position,
        "names": list(readers),
        "kinds": [",".join(kinds) for kinds in readers.values()],
    }
    cur = await conn.execute(_REACHED, params)
    row = await cur.fetchone()
    return row is not None and row[0] == len(readers)
