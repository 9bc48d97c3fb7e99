"""The PostgreSQL event store: append with an expected version, read a stream, read the log."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import msgspec
import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, PoolClosed

from events.errors import DuplicateEventId, WrongExpectedVersion
from events.metadata import EventMetadata
from events.registry import DomainEvent, EventRegistry, Stored, encode_event
from events.wakeup import CHANNEL

log = logging.getLogger(__name__)

NO_STREAM: Final = "no_stream"
ANY: Final = "any"
ExpectedVersion = int | Literal["no_stream", "any"]
_Conn = psycopg.AsyncConnection[object] | psycopg.AsyncConnection[tuple[object, ...]]


class Checkpoint(msgspec.Struct, frozen=True, order=True):
    """A place in the ordered log: the last (transaction id, position) taken."""

    tx_id: int = 0
    position: int = 0


START: Final = Checkpoint()


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event as stored; `data` and `metadata` are the raw JSON texts."""

    position: int
    tx_id: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    data: str
    metadata: str
    event_id: uuid.UUID
    recorded_at: datetime

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.tx_id, self.position)


class Stream(msgspec.Struct, frozen=True):
    """A stream as a decider folds it: its events decoded (and upcast), in version order."""

    stream_id: str
    events: list[DomainEvent]
    version: int
    """The version its last event brought it to (no event: the version read after; 0: none)."""
    org_id: str
    """The organization the first event read was written for ("" when none was read)."""


class _Owner(msgspec.Struct):
    org_id: str = ""


_owner = msgspec.json.Decoder(_Owner)


class AppendResult(msgspec.Struct, frozen=True):
    version: int
    positions: list[int]
    tx_id: int
    recorded_at: datetime
    event_ids: list[uuid.UUID]

    @property
    def position(self) -> int:
        return self.positions[-1] if self.positions else 0


class NewEvents(msgspec.Struct, frozen=True):
    """One append: events for one stream, for the batch API."""

    stream_id: str
    expected_version: ExpectedVersion
    events: Sequence[DomainEvent]
    metadata: EventMetadata
    event_ids: Sequence[uuid.UUID] | None = None


# Why the stream lock: a transaction id is assigned at a transaction's first write, and the log is
# read in (transaction id, position) order. An append that took its id and then waited for a
# stream (a batch blocked on one of its later streams, or an UPDATE that took its id before
# meeting the row lock) could commit a higher version of a stream under a lower id than an append
# that overtook it, and log readers would see that stream's versions out of order. So every
# append first takes a transaction-scoped advisory lock per stream, before it writes anything:
# writers of one stream take their ids in the order they commit. A key pair (class, hash), not
# one bigint, so these never collide with the process-wide locks (leaders, slots, migrations).
_STREAM_LOCK_CLASS: Final = 0x0F1EE7
_STREAM_LOCK: Final = (
    b"lock AS (SELECT pg_advisory_xact_lock(%d, hashtext(%%(sid)s)) AS held)" % _STREAM_LOCK_CLASS
)
_LOCK_STREAMS_SQL: Final = (
    b"SELECT pg_advisory_xact_lock(%d, key) FROM"
    b" (SELECT DISTINCT hashtext(sid) AS key FROM unnest(%%s::text[]) AS sid ORDER BY key) AS k"
    % _STREAM_LOCK_CLASS
)

# Each claim joins the lock, so its write (and the transaction id) comes after the lock.
_STREAM_CLAIM: Final[dict[str, bytes]] = {
    "exact": b"UPDATE streams SET version = version + %(n)s FROM lock"
    b" WHERE stream_id = %(sid)s AND version = %(expected)s RETURNING version",
    NO_STREAM: b"INSERT INTO streams (stream_id, version) SELECT %(sid)s, %(n)s FROM lock"
    b" ON CONFLICT DO NOTHING RETURNING version",
    ANY: b"INSERT INTO streams (stream_id, version) SELECT %(sid)s, %(n)s FROM lock"
    b" ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + EXCLUDED.version"
    b" RETURNING version",
}

# Where the inserted rows come from. One event (the usual append) goes in plain parameters;
# several go in arrays, sent binary (psycopg quotes each JSON text of a text array). Client CPU
# per append: text arrays 209 µs, binary 174 µs, plain parameters 146 µs (bench/README.md).
_EVENT_ROWS: Final[dict[str, bytes]] = {
    "one": b"(VALUES (%(types)s::text, %(svs)s::int, %(datas)s::text, %(ids)s::uuid, 1))",
    "many": b"unnest(%(types)b::text[], %(svs)b::int[], %(datas)b::text[], %(ids)b::uuid[])"
    b" WITH ORDINALITY",
}

# One statement, so an autocommit append is one round trip and one implicit transaction.
_APPEND_TEMPLATE: Final = (
    b"WITH %s, claim AS (%s), inserted AS ("
    b" INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,"
    b" event_id)"
    b" SELECT %%(sid)s, claim.version - %%(n)s + e.ord, e.type, e.sv, e.data::jsonb,"
    b" %%(meta)s::jsonb, e.id"
    b" FROM claim, %s AS e(type, sv, data, id, ord)"
    b" ORDER BY e.ord RETURNING version, position, tx_id, recorded_at)"
    b" SELECT version, position, tx_id::text::bigint, recorded_at FROM inserted"
    b" ORDER BY position"
)
_APPEND_SQL: Final = {
    (kind, shape): _APPEND_TEMPLATE % (_STREAM_LOCK, claim, rows)
    for kind, claim in _STREAM_CLAIM.items()
    for shape, rows in _EVENT_ROWS.items()
}


# A batch of appends to distinct streams as ONE statement, so an autocommit batch is one
# round trip and one implicit transaction: the locks of all its streams (in key order), then
# per stream its claim and its inserted rows. A claim that matches nothing (a wrong expected
# version) must undo the whole batch, and the statement's other streams were written by then:
# the guard divides by zero unless every stream was claimed, which aborts the statement, so
# nothing of it is committed. Its divisor depends on the claims' rows, so PostgreSQL cannot
# fold it at planning time; the guard is materialized and its value selected, so it is
# computed whatever else comes back.
_BATCH_LOCK: Final = (
    b"lock AS (SELECT count(pg_advisory_xact_lock(%d, key)) AS held FROM"
    b" (SELECT DISTINCT hashtext(sid) AS key FROM unnest(%%(sids)s::text[]) AS sid"
    b" ORDER BY key) AS k)" % _STREAM_LOCK_CLASS
)
_BATCH_INSERT: Final = (
    b"INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,"
    b" event_id)"
    b" SELECT %%(sid)s, claim.version - %%(n)s + e.ord, e.type, e.sv, e.data::jsonb,"
    b" %%(meta)s::jsonb, e.id"
    b" FROM claim, %s AS e(type, sv, data, id, ord)"
    b" ORDER BY e.ord RETURNING version, position, tx_id, recorded_at"
)
_PARAM_NAMES: Final = ("sid", "n", "expected", "meta", "types", "svs", "datas", "ids")


def _numbered(sql: bytes, index: int) -> bytes:
    """`sql` with its parameters and its `claim` CTE named for the batch's `index`th append."""
    for name in _PARAM_NAMES:
        sql = sql.replace(b"%%(%s)" % name.encode(), b"%%(%s%d)" % (name.encode(), index))
    return sql.replace(b"claim", b"claim%d" % index)


def _batch_sql(shapes: Sequence[tuple[str, str]]) -> bytes:
    """The one statement of a batch whose appends have these (claim kind, rows shape)."""
    ctes = [_BATCH_LOCK]
    for n, (kind, shape) in enumerate(shapes):
        ctes.append(b"claim AS (%s)" % _STREAM_CLAIM[kind])
        ctes.append(b"inserted AS (%s)" % (_BATCH_INSERT % _EVENT_ROWS[shape]))
        ctes[-2:] = [_numbered(cte.replace(b"inserted", b"inserted%d" % n), n) for cte in ctes[-2:]]
    claimed = b" + ".join(b"(SELECT count(*) FROM claim%d)" % n for n in range(len(shapes)))
    ctes.append(b"guard AS MATERIALIZED (SELECT 1 / ((%s) / %d) AS ok)" % (claimed, len(shapes)))
    rows = b" UNION ALL ".join(
        b"SELECT %d AS item, version, position, tx_id::text::bigint, recorded_at"
        b" FROM inserted%d" % (n, n)
        for n in range(len(shapes))
    )
    return (
        b"WITH %s SELECT r.item, r.version, r.position, r.tx_id, r.recorded_at, g.ok"
        b" FROM guard AS g LEFT JOIN (%s) AS r ON true ORDER BY r.item, r.position"
        % (b", ".join(ctes), rows)
    )


def _columns(data: str = "data::text", metadata: str = "metadata::text") -> str:
    """The columns of a RecordedEvent, in its order."""
    return (
        "position, tx_id::text::bigint, stream_id, version, event_type, schema_version,"
        f" {data}, {metadata}, event_id, recorded_at"
    )


RECORDED_COLUMNS: Final = _columns()
"""The columns a RecordedEvent is built from, in its order (events.log_reads reads them too)."""

# Why the xmin filter: positions come from a sequence and become visible in COMMIT order, not
# in position order. A reader that checkpointed at position 10 while the transaction holding
# position 9 was still open would skip 9 for ever. So a reader only takes events written by
# transactions older than the oldest transaction still running (all of those have ended), and
# orders/checkpoints by (tx_id, position): nothing can later appear below the checkpoint.
# The ORDER BY names the table's columns: a bare `tx_id` would be the output column
# (`tx_id::text::bigint`), which no index serves, and each batch would sort the rest of the log.
_READ_ALL_TEMPLATE: Final = (
    "SELECT {columns} FROM events"
    " WHERE (tx_id, position) > (%(tx)s::text::xid8, %(pos)s)"
    " AND tx_id < pg_snapshot_xmin(pg_current_snapshot())"
    " ORDER BY events.tx_id, events.position LIMIT %(limit)s"
)
_READ_ALL_SQL: Final = _READ_ALL_TEMPLATE.format(columns=RECORDED_COLUMNS).encode()
# A reader of some stream types (a projection) still walks every event, to move its
# checkpoint, but PostgreSQL renders the JSON only of the events it will apply: turning jsonb
# into text is most of a read's cost on the server (bench/README.md, "Projections").
_OF_TYPES: Final = "split_part(stream_id, '-', 1) = ANY(%(types)s)"
_READ_ALL_OF_TYPES_SQL: Final = _READ_ALL_TEMPLATE.format(
    columns=_columns(
        f"CASE WHEN {_OF_TYPES} THEN data::text ELSE '{{}}' END",
        f"CASE WHEN {_OF_TYPES} THEN metadata::text ELSE '{{}}' END",
    )
).encode()

_READ_STREAM_SQL: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM events WHERE stream_id = %(sid)s AND version > %(after)s"
    " ORDER BY version LIMIT %(limit)s"
).encode()


# Never prepared (planned for each call): a connection's prepared statement keeps the generic
# plan chosen once, and one chosen while the log was small (a hash join over a scan of
# `events`) read the whole log for every create later (0.35 ms -> 1.3 ms of server time by
# 3,000 creates; bench/README.md). Planned with the arrays at hand, it walks the
# (stream_id, version) index.
_READ_STREAMS_SQL: Final = (
    f"SELECT {RECORDED_COLUMNS} FROM unnest(%b::text[], %b::int[]) AS s(id, after)"
    " JOIN events ON events.stream_id = s.id AND events.version > s.after"
    " ORDER BY events.stream_id, events.version"
).encode()


_LAST_COMMITTED_SQL: Final = (
    b"SELECT tx_id::text::bigint, position FROM events"
    b" ORDER BY events.tx_id DESC, events.position DESC LIMIT 1"
)
_HEAD_SQL: Final = (
    b"SELECT tx_id::text::bigint, position FROM events"
    b" WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())"
    b" ORDER BY events.tx_id DESC, events.position DESC LIMIT 1"
)


class _Wakeups:
    """Wakes the log readers that LISTEN (events.wakeup) once appends have committed.

    The NOTIFY runs in a transaction of its own, not in the appending one: PostgreSQL holds a
    cluster-wide lock from a notifying transaction's pre-commit until its commit record is
    flushed, so notifying from every append let only one append commit per WAL flush (about half
    the appends/s at 8 writers, see bench/README.md). Coalesced: one NOTIFY in flight at a time,
    then at most one per `_SPACING` while appends go on. Best effort: readers also poll.
    """

    _SPACING: Final = 0.005
    # A notifying transaction takes a transaction id, so its commit would wait for a WAL
    # flush of its own: nothing in it needs to be durable. One round trip.
    _NOTIFY: Final = (
        f"BEGIN; SET LOCAL synchronous_commit TO off; NOTIFY {CHANNEL}; COMMIT"
    ).encode()

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._pending = False
        self._sender: asyncio.Task[None] | None = None

    def appended(self) -> None:
        self._pending = True
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="event-store-wakeups")

    async def _send(self) -> None:
        while self._pending:
            self._pending = False
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(self._NOTIFY)
            except PoolClosed:
                return  # shutting down: nothing of ours left to wake
            except psycopg.Error as e:
                log.warning("could not wake log readers (%s); they will poll", e)
                return
            await asyncio.sleep(self._SPACING)


def _claim_kind(expected: ExpectedVersion) -> str:
    if isinstance(expected, int):
        if expected < 1:
            raise ValueError("an exact expected version starts at 1; use NO_STREAM for a new one")
        return "exact"
    return expected


class EventStore:
    """Appends to and reads from the events table through an autocommit connection pool.

    `load_*` reads return events decoded by the store's registry (what deciders fold);
    `read_*` reads return them as stored (RecordedEvent: positions, ids, raw metadata).
    """

    def __init__(self, pool: AsyncConnectionPool, registry: EventRegistry | None = None) -> None:
        self._pool = pool
        self._registry = registry if registry is not None else _every_event_type()
        self._wakeups = _Wakeups(pool)

    @property
    def pool(self) -> AsyncConnectionPool:
        return self._pool

    @property
    def registry(self) -> EventRegistry:
        return self._registry

    def decode(self, stored: Stored) -> DomainEvent:
        """A stored event (or one off the wire) as its current Struct, upcast if it is old."""
        return self._registry.decode(stored.event_type, stored.schema_version, stored.data)

    def decode_all(self, stored: Iterable[Stored]) -> list[DomainEvent]:
        return self._registry.decode_all(stored)

    async def append(
        self,
        stream_id: str,
        expected_version: ExpectedVersion,
        events: Sequence[DomainEvent],
        metadata: EventMetadata,
        event_ids: Sequence[uuid.UUID] | None = None,
    ) -> AppendResult:
        """Append `events` to `stream_id` if its version is `expected_version`.

        Sending the same event ids again (a retry after a lost reply) returns the first
        result and appends nothing.
        """
        batch = NewEvents(stream_id, expected_version, events, metadata, event_ids)
        async with self._pool.connection() as conn:
            result = await _append_one(conn, batch)
        self._wakeups.appended()
        return result

    async def append_batch(self, batch: Sequence[NewEvents]) -> list[AppendResult]:
        """Append to several streams in ONE transaction (bulk loads): all or nothing."""
        prepared = [_Prepared.of(item) for item in batch]
        distinct = len({item.stream_id for item in batch}) == len(batch)
        async with self._pool.connection() as conn:
            try:
                if distinct:
                    results = await _append_together(conn, prepared)
                else:
                    results = await _append_pipelined(conn, prepared)
            except (pg_errors.UniqueViolation, pg_errors.DivisionByZero, _Refused):
                # Rolled back whole: each item was appended before (a retry), or one conflicts.
                results = [await _already_appended_or_conflict(conn, item) for item in prepared]
        self._wakeups.appended()
        return results

    async def load_stream(self, stream_id: str, after_version: int = 0) -> Stream:
        """The stream's events after `after_version` (all of them: no limit), decoded."""
        return self.as_stream(
            stream_id, after_version, await self.read_stream(stream_id, after_version)
        )

    async def load_streams(self, after: Mapping[str, int]) -> dict[str, Stream]:
        """Several streams in one query, each after the version given for it (0: all of it),
        decoded: for a command that decides over several."""
        found = await self.read_streams(after)
        return {sid: self.as_stream(sid, after[sid], recorded) for sid, recorded in found.items()}

    def as_stream(
        self, stream_id: str, after_version: int, recorded: list[RecordedEvent]
    ) -> Stream:
        """Events of `stream_id` read as stored (read_stream), decoded as load_stream does."""
        if not recorded:
            return Stream(stream_id, [], after_version, "")
        org_id = _owner.decode(recorded[0].metadata).org_id
        return Stream(stream_id, self.decode_all(recorded), recorded[-1].version, org_id)

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The stream's events after `after_version` as stored, at most `limit` (None: all of
        them; a cap by default would hand a decider a prefix it takes for the whole stream)."""
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row)
            await cur.execute(
                _READ_STREAM_SQL, {"sid": stream_id, "after": after_version, "limit": limit}
            )
            return [RecordedEvent(*row) for row in await cur.fetchall()]

    async def read_streams(self, after: Mapping[str, int]) -> dict[str, list[RecordedEvent]]:
        """Several streams in one query, each after the version given for it (0: all of it),
        for a command that decides over several."""
        found: dict[str, list[RecordedEvent]] = {stream_id: [] for stream_id in after}
        async with self._pool.connection() as conn:
            cur = conn.cursor(row_factory=tuple_row, binary=True)
            await cur.execute(_READ_STREAMS_SQL, (list(after), list(after.values())), prepare=False)
            for row in await cur.fetchall():
                event = RecordedEvent(*row)
                found[event.stream_id].append(event)
        return found

    async def read_all(self, after: Checkpoint = START, limit: int = 1000) -> list[RecordedEvent]:
        """The next events of the ordered log after `after`; never skips one."""
        async with self._pool.connection() as conn:
            return await read_all_on(conn, after, limit)

    async def stream_version(self, stream_id: str) -> int | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT version FROM streams WHERE stream_id = %s", (stream_id,)
            )
            row = await cur.fetchone()
            return None if row is None else int(row[0])

    async def head(self, *, readable: bool = True) -> Checkpoint:
        """The checkpoint of the newest event a reader may take now; with `readable=False`,
        of the newest committed event in log order, which a reader may have to wait for (an
        older transaction still open hides it): what a read that must reflect every write
        made before it waits for."""
        query = _HEAD_SQL if readable else _LAST_COMMITTED_SQL
        async with self._pool.connection() as conn:
            cur = await conn.execute(query)
            row = await cur.fetchone()
            return START if row is None else Checkpoint(int(row[0]), int(row[1]))


def _every_event_type() -> EventRegistry:
    # Imported here: the catalog names every domain's events, the store only their base.
    from events.catalog import build_registry

    return build_registry()


async def read_all_on(
    conn: _Conn,
    after: Checkpoint,
    limit: int,
    of_types: Sequence[str] = (),
) -> list[RecordedEvent]:
    """read_all on a connection the caller holds (projectors read and write on one).

    With `of_types`, events of other stream types come with `{}` as data and metadata: they
    keep their place in the log but are not for decoding.
    """
    cur = conn.cursor(row_factory=tuple_row, binary=True)
    params = {"tx": str(after.tx_id), "pos": after.position, "limit": limit}
    if of_types:
        await cur.execute(_READ_ALL_OF_TYPES_SQL, {**params, "types": list(of_types)})
    else:
        await cur.execute(_READ_ALL_SQL, params)
    return [RecordedEvent(*row) for row in await cur.fetchall()]


class _Refused(Exception):
    """An append inside a batch claimed no version; resolved after the rollback."""


class _Prepared(msgspec.Struct, frozen=True):
    """One append, ready to execute: its SQL, its parameters and its event ids."""

    batch: NewEvents
    sql: bytes
    params: Mapping[str, object]
    ids: list[uuid.UUID]
    shape: str

    @classmethod
    def of(cls, batch: NewEvents) -> _Prepared:
        if not batch.events:
            raise ValueError("append needs at least one event")
        ids = list(batch.event_ids) if batch.event_ids is not None else []
        ids += [uuid.uuid4() for _ in range(len(batch.events) - len(ids))]
        shape, event_params = _event_params(batch.events, ids)
        params = {
            **event_params,
            "sid": batch.stream_id,
            "n": len(batch.events),
            "expected": batch.expected_version,
            "meta": msgspec.json.encode(batch.metadata).decode(),
        }
        sql = _APPEND_SQL[_claim_kind(batch.expected_version), shape]
        return cls(batch, sql, params, ids, shape)


async def _send(conn: _Conn, item: _Prepared) -> psycopg.AsyncCursor[tuple[Any, ...]]:
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(item.sql, item.params)
    return cur


async def _result(cur: psycopg.AsyncCursor[tuple[Any, ...]], item: _Prepared) -> AppendResult:
    """The outcome of a sent append; raises _Refused when its stream claim did not match."""
    rows = await cur.fetchall()
    if not rows:
        raise _Refused()
    return _appended(rows, item.ids)


def _appended(rows: Sequence[tuple[Any, ...]], ids: list[uuid.UUID]) -> AppendResult:
    """From rows of (version, position, tx_id, recorded_at), in position order."""
    last = rows[-1]
    return AppendResult(int(last[0]), [int(r[1]) for r in rows], int(last[2]), last[3], ids)


def recorded(item: NewEvents, result: AppendResult) -> list[RecordedEvent]:
    """The events of `item` as `result` says they were stored, without reading them back
    (what a write answers with: the instance a create made is the fold of its events)."""
    first = result.version - len(item.events) + 1
    metadata = msgspec.json.encode(item.metadata).decode()
    return [
        RecordedEvent(
            position,
            result.tx_id,
            item.stream_id,
            first + n,
            event.event_type(),
            event.schema_version,
            encode_event(event),
            metadata,
            event_id,
            result.recorded_at,
        )
        for n, (event, position, event_id) in enumerate(
            zip(item.events, result.positions, result.event_ids, strict=True)
        )
    ]


async def _append_together(conn: _Conn, prepared: Sequence[_Prepared]) -> list[AppendResult]:
    """A batch of distinct streams in one statement (see _batch_sql): one round trip."""
    shapes = [(_claim_kind(p.batch.expected_version), p.shape) for p in prepared]
    params: dict[str, object] = {"sids": [p.batch.stream_id for p in prepared]}
    for n, item in enumerate(prepared):
        params |= {f"{name}{n}": value for name, value in item.params.items()}
    cur = conn.cursor(row_factory=tuple_row)
    await cur.execute(_batch_sql(shapes), params)
    rows: list[list[tuple[Any, ...]]] = [[] for _ in prepared]
    for row in await cur.fetchall():
        rows[row[0]].append(row[1:5])
    return [_appended(found, item.ids) for found, item in zip(rows, prepared, strict=True)]


async def _append_pipelined(conn: _Conn, prepared: Sequence[_Prepared]) -> list[AppendResult]:
    """A batch that appends to one stream more than once: one statement could not see its
    own earlier writes, so BEGIN, the locks and every append go out pipelined (two round
    trips: the results, then COMMIT)."""
    async with conn.pipeline(), conn.transaction():
        await conn.execute(_LOCK_STREAMS_SQL, ([p.batch.stream_id for p in prepared],))
        sent = [await _send(conn, item) for item in prepared]
        return [await _result(cur, item) for cur, item in zip(sent, prepared, strict=True)]


async def _insert(conn: _Conn, item: _Prepared) -> AppendResult:
    return await _result(await _send(conn, item), item)


async def _append_one(
    conn: _Conn,
    batch: NewEvents,
) -> AppendResult:
    item = _Prepared.of(batch)
    try:
        return await _insert(conn, item)
    except (pg_errors.UniqueViolation, _Refused):
        return await _already_appended_or_conflict(conn, item)


def _event_params(
    events: Sequence[DomainEvent], ids: list[uuid.UUID]
) -> tuple[str, Mapping[str, object]]:
    """The rows' parameters and the shape of _EVENT_ROWS they fit."""
    columns: dict[str, Sequence[object]] = {
        "types": [e.event_type() for e in events],
        "svs": [e.schema_version for e in events],
        "datas": [encode_event(e) for e in events],
        "ids": ids,
    }
    if len(events) == 1:
        return "one", {name: values[0] for name, values in columns.items()}
    return "many", columns


async def _already_appended_or_conflict(
    conn: _Conn,
    item: _Prepared,
) -> AppendResult:
    batch, ids = item.batch, item.ids
    cur = conn.cursor(row_factory=tuple_row)
    # Never prepared, as _READ_STREAMS_SQL: a generic plan chosen while the log was small would
    # scan all of it on every lost race later.
    await cur.execute(
        "SELECT stream_id, version, position, tx_id::text::bigint, recorded_at FROM events"
        " WHERE event_id = ANY(%s) ORDER BY position",
        (ids,),
        prepare=False,
    )
    found = await cur.fetchall()
    if len(found) == len(ids) and all(row[0] == batch.stream_id for row in found):
        return _appended([row[1:] for row in found], ids)
    if found:
        raise DuplicateEventId(str(ids[0]))
    await cur.execute("SELECT version FROM streams WHERE stream_id = %s", (batch.stream_id,))
    row = await cur.fetchone()
    raise WrongExpectedVersion(
        batch.stream_id, batch.expected_version, None if row is None else int(row[0])
    )
