"""Appends per second of odoofleet's event store, eventsourcing's recorder and plain INSERTs.

    python -m bench.append [--database-url URL] [--seconds N] [--quick]

All three run against one PostgreSQL server, with 1, 8 and 32 concurrent writers appending 1 or 10
events per transaction, each writer to streams of its own.

Every run works in a fresh database (bench_<random>, migrated, dropped at the end). Each cell
(system x writers x events per transaction) is measured in ROUNDS turns, taken in alternation with
the other systems: each turn warms up, then counts the appends that finish within its window; a
cell's rate is the median of its turns. The table goes to stdout and, unless --quick, into
bench/README.md between the `append` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import secrets
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version

import msgspec
import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench.readme import README, write_section
from events.metadata import Actor, EventMetadata
from events.migrate import migrate
from events.operation import OperationStepCompleted
from events.pool import Pool, open_pool
from events.registry import encode_event
from events.store import NO_STREAM, EventStore

WRITERS = (1, 8, 32)
EVENTS_PER_TX = (1, 10)
SYSTEMS = ("odoofleet", "eventsourcing", "plain")
STREAMS_PER_WRITER = 16
ROUNDS = 5
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

EVENT = OperationStepCompleted(
    operation_id=str(uuid.uuid4()), step="deploy-addons", duration_ms=1234, output="ok " * 20
)
META = EventMetadata(
    actor=Actor(id="user-1", name="Bench User"),
    org_id="org-bench",
    correlation_id=str(uuid.uuid4()),
    client_ip="127.0.0.1",
    user_agent="bench",
)
META_JSON = msgspec.json.encode(META).decode()
# eventsourcing keeps one opaque blob per event: give it the same data and metadata.
STATE = msgspec.json.encode({"data": EVENT, "metadata": META})

PLAIN_TABLE = """
CREATE TABLE plain_events (
    position       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
)"""
# Parameters go as odoofleet's store sends them (one event: plain values; several: binary arrays),
# so the gap between the two is the cost of odoofleet's guarantees, not of parameter passing.
PLAIN_INSERT = {
    "one": b"INSERT INTO plain_events"
    b" (stream_id, version, event_type, schema_version, data, metadata, event_id)"
    b" VALUES (%(sid)s, %(first)s, %(types)s, %(svs)s, %(datas)s::jsonb, %(meta)s::jsonb, %(ids)s)",
    "many": b"INSERT INTO plain_events"
    b" (stream_id, version, event_type, schema_version, data, metadata, event_id)"
    b" SELECT %(sid)s, %(first)s + e.ord - 1, e.type, e.sv, e.data::jsonb, %(meta)s::jsonb, e.id"
    b" FROM unnest(%(types)b::text[], %(svs)b::int[], %(datas)b::text[], %(ids)b::uuid[])"
    b" WITH ORDINALITY AS e(type, sv, data, id, ord)",
}


@dataclass(frozen=True)
class Timing:
    warmup: float
    seconds: float


@dataclass(frozen=True)
class Window:
    """Appends finishing between `start` and `end` (perf_counter seconds) are counted."""

    start: float
    end: float

    @classmethod
    def from_now(cls, timing: Timing) -> Window:
        start = time.perf_counter() + timing.warmup
        return cls(start, start + timing.seconds)


class OwnStreams:
    """One writer's streams, taken in turn, with the version each has reached."""

    def __init__(self) -> None:
        self._versions = {uuid.uuid4(): 0 for _ in range(STREAMS_PER_WRITER)}
        self._turns = itertools.cycle(list(self._versions))

    def take(self) -> tuple[uuid.UUID, int]:
        stream = next(self._turns)
        return stream, self._versions[stream]

    def advance(self, stream: uuid.UUID, count: int) -> None:
        self._versions[stream] += count


async def count_async(append: Callable[[], Awaitable[None]], window: Window) -> int:
    counted = 0
    while True:
        await append()
        now = time.perf_counter()
        if now > window.end:
            return counted
        counted += now >= window.start


def count_sync(append: Callable[[], None], window: Window) -> int:
    counted = 0
    while True:
        append()
        now = time.perf_counter()
        if now > window.end:
            return counted
        counted += now >= window.start


# --- (a) odoofleet ------------------------------------------------------------------------------


def odoofleet_writer(store: EventStore, per_tx: int) -> Callable[[], Awaitable[None]]:
    streams, events = OwnStreams(), [EVENT] * per_tx

    async def append() -> None:
        stream, version = streams.take()
        await store.append(f"operation-{stream}", version or NO_STREAM, events, META)
        streams.advance(stream, per_tx)

    return append


async def odoofleet_cell(url: str, writers: int, per_tx: int, timing: Timing) -> int:
    async with _pool(url, writers) as pool:
        store = EventStore(pool)
        window = Window.from_now(timing)
        appends = [odoofleet_writer(store, per_tx) for _ in range(writers)]
        return sum(await asyncio.gather(*(count_async(a, window) for a in appends)))


# --- (b) eventsourcing --------------------------------------------------------------------------


def eventsourcing_datastore(url: str, pool_size: int) -> PostgresDatastore:
    params = conninfo_to_dict(url)
    return PostgresDatastore(
        dbname=str(params["dbname"]),
        host=str(params.get("host", "127.0.0.1")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "postgres")),
        password=str(params.get("password", "")),
        pool_size=pool_size,
    )


def eventsourcing_writer(recorder: PostgresApplicationRecorder, per_tx: int) -> Callable[[], None]:
    streams = OwnStreams()
    topic = f"events.operation:{EVENT.event_type()}"

    def append() -> None:
        stream, version = streams.take()
        recorder.insert_events(
            [StoredEvent(stream, version + k, topic, STATE) for k in range(1, per_tx + 1)]
        )
        streams.advance(stream, per_tx)

    return append


def eventsourcing_cell(url: str, writers: int, per_tx: int, timing: Timing) -> int:
    datastore = eventsourcing_datastore(url, writers)
    try:
        recorder = PostgresApplicationRecorder(datastore)
        recorder.create_table()  # the table exists: this registers the row type's adapter
        datastore.pool.open(wait=True, timeout=30)
        window = Window.from_now(timing)
        appends = [eventsourcing_writer(recorder, per_tx) for _ in range(writers)]
        with ThreadPoolExecutor(writers) as threads:
            return sum(threads.map(lambda append: count_sync(append, window), appends))
    finally:
        datastore.close()


# --- (c) plain INSERTs --------------------------------------------------------------------------


def plain_writer(pool: Pool, per_tx: int) -> Callable[[], Awaitable[None]]:
    streams, events = OwnStreams(), [EVENT] * per_tx
    sql = PLAIN_INSERT["one" if per_tx == 1 else "many"]

    async def append() -> None:
        stream, version = streams.take()
        params = plain_rows(events)
        params |= {"sid": f"operation-{stream}", "first": version + 1, "meta": META_JSON}
        async with pool.connection() as conn:
            await conn.execute(sql, params)
        streams.advance(stream, per_tx)

    return append


def plain_rows(events: list[OperationStepCompleted]) -> dict[str, object]:
    columns: dict[str, list[object]] = {
        "types": [e.event_type() for e in events],
        "svs": [e.schema_version for e in events],
        "datas": [encode_event(e) for e in events],
        "ids": [uuid.uuid4() for _ in events],
    }
    if len(events) == 1:
        return {name: values[0] for name, values in columns.items()}
    return dict(columns)


async def plain_cell(url: str, writers: int, per_tx: int, timing: Timing) -> int:
    async with _pool(url, writers) as pool:
        window = Window.from_now(timing)
        appends = [plain_writer(pool, per_tx) for _ in range(writers)]
        return sum(await asyncio.gather(*(count_async(a, window) for a in appends)))


@asynccontextmanager
async def _pool(url: str, size: int) -> AsyncIterator[Pool]:
    pool = await open_pool(url, min_size=size, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


# --- running the grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    system: str
    writers: int
    per_tx: int


async def run_cell(url: str, cell: Cell, timing: Timing) -> float:
    """Appends per second of one cell, measured once."""
    if cell.system == "odoofleet":
        appended = await odoofleet_cell(url, cell.writers, cell.per_tx, timing)
    elif cell.system == "eventsourcing":
        appended = await asyncio.to_thread(
            eventsourcing_cell, url, cell.writers, cell.per_tx, timing
        )
    else:
        appended = await plain_cell(url, cell.writers, cell.per_tx, timing)
    return appended / timing.seconds


async def run_group(url: str, writers: int, per_tx: int, timing: Timing) -> dict[Cell, float]:
    """The median of ROUNDS measurements of each system, on tables emptied first. The systems
    take turns, so load passing on the machine hits all of them alike."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("TRUNCATE events, streams, stored_events, plain_events")
    rates: dict[Cell, list[float]] = {Cell(s, writers, per_tx): [] for s in SYSTEMS}
    for _ in range(ROUNDS):
        for cell, measured in rates.items():
            measured.append(await run_cell(url, cell, timing))
    for cell, measured in rates.items():
        shown = ", ".join(f"{rate:,.0f}" for rate in measured)
        print(
            f"  {cell.system:<13} {writers:>2} writers x {per_tx:>2} events/tx: {shown} appends/s"
        )
    return {cell: statistics.median(measured) for cell, measured in rates.items()}


async def run_grid(url: str, timing: Timing) -> dict[Cell, float]:
    results = {}
    for writers, per_tx in itertools.product(WRITERS, EVENTS_PER_TX):
        results |= await run_group(url, writers, per_tx, timing)
    return results


async def prepare(url: str) -> None:
    """Migrate odoofleet's schema, create the plain table and eventsourcing's table."""
    await migrate(url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(PLAIN_TABLE.encode())
    datastore = eventsourcing_datastore(url, 1)
    try:
        PostgresApplicationRecorder(datastore).create_table()
    finally:
        datastore.close()


@asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    name = f"bench_{secrets.token_hex(6)}"
    admin = _with_dbname(server_url, "postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield _with_dbname(server_url, name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


# --- reporting ----------------------------------------------------------------------------------


def results_table(results: dict[Cell, float]) -> str:
    rate = "appends/s (events/s)"
    lines = [
        f"| writers | events/tx | odoofleet {rate} | eventsourcing {rate} | plain {rate}"
        " | odoofleet ÷ eventsourcing | odoofleet ÷ plain |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for writers, per_tx in itertools.product(WRITERS, EVENTS_PER_TX):
        rates = {s: results[Cell(s, writers, per_tx)] for s in SYSTEMS}
        cells = [f"{rates[s]:,.0f} ({rates[s] * per_tx:,.0f})" for s in SYSTEMS]
        ratios = [_ratio(rates["odoofleet"], rates[other]) for other in ("eventsourcing", "plain")]
        lines.append(f"| {writers} | {per_tx} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator else "n/a"


async def machine_facts(url: str, timing: Timing) -> str:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'),"
            " current_setting('fsync')"
        )
        server_version, synchronous_commit, fsync = await cur.fetchone() or ("?", "?", "?")
    versions = ", ".join(f"{name} {package_version(name)}" for name in ("psycopg", "eventsourcing"))
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores ({platform.machine()}),"
        f" PostgreSQL {server_version} on the same machine"
        f" (synchronous_commit={synchronous_commit}, fsync={fsync}),"
        f" Python {platform.python_version()}, {versions};"
        f" each cell is the median of {ROUNDS} turns of {timing.seconds:g} s,"
        f" each after {timing.warmup:g} s of warm-up."
    )


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.append", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", DEFAULT_URL),
        help="a PostgreSQL server to create the benchmark database on (default: %(default)s)",
    )
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="measured seconds per cell (default: 3)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short turns (~25 s in all); leave bench/README.md be"
    )
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    timing = Timing(0.1, 0.1) if args.quick else Timing(0.3, args.seconds / ROUNDS)
    async with fresh_database(args.database_url) as url:
        await prepare(url)
        facts = await machine_facts(url, timing)
        results = await run_grid(url, timing)
    table = results_table(results)
    print(f"\n{facts}\n\n{table}")
    if not args.quick:
        write_section("append", "Event store appends", f"{facts}\n\n{table}")
        print(f"\nwritten to {README}")


if __name__ == "__main__":
    asyncio.run(main())
