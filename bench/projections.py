"""Projections: rebuild throughput and peak RSS of the instances and audit projections as the
log grows, and the lag from commit to read model at a constant write rate.

    python -m bench.projections [--database-url URL] [--events N] [--rates R,R] [--quick]

Without --database-url it starts a private PostgreSQL (the pgserver wheel): log readers only
take events older than every transaction open in the whole cluster, so on a shared server
other databases' work (a CREATE DATABASE takes ~0.3 s) would show up as projection lag. The
log is a generated fleet history, interleaved as concurrent sagas interleave: instances are
created and provisioned, started, stopped, restarted and renamed (each action with its
operation's steps), and send health heartbeats. A second, adversarial log holds instance
events only. Logs are loaded with COPY (bench/append.py measures appends); each rebuild runs
`projections rebuild` in a process of its own; the lag run appends through EventStore.append
while `run_projections` runs in its own process. Results go to stdout and, unless --quick,
into bench/README.md between the `projections` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import psycopg
from psycopg.conninfo import make_conninfo

from bench.readme import write_section
from events.catalog import build_registry, stream_type
from events.health import HealthObserved
from events.instance import (
    ActionRequested,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    InstanceUpdated,
    ProvisioningRequested,
)
from events.metadata import Actor, EventMetadata, system_actor
from events.migrate import migrate
from events.operation import OperationStarted, OperationStepCompleted, OperationSucceeded
from events.pool import Pool, open_pool
from events.registry import DomainEvent, encode_event
from events.store import ANY, EventStore
from projections.catalog import build_projections
from projections.runtime.rebuild import rebuild

ROOT = Path(__file__).resolve().parent.parent
# Appenders of the lag runs: each waits for its commit, so one alone keeps up ~1,100/s here.
WRITERS = 4
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Field values shared by the generated events (msgspec.convert ignores what a type lacks).
DEFAULTS = {
    "server_id": "srv", "project_id": None, "template_id": None, "branch": "main",
    "environment_type": "production", "odoo_version": "18.0", "odoo_edition": "community",
    "addons_path": None, "http_port": 8069, "longpolling_port": 8072, "http_port_host": 20000,
    "longpolling_port_host": 20001, "mcp_write_enabled": False, "active_color": "blue",
    "settings": {"workers": 2, "max_cron_threads": 1, "limit_memory_hard": 2_684_354_560,
                 "limit_memory_soft": 2_147_483_648, "limit_time_cpu": 600,
                 "limit_time_real": 1200, "log_level": "info"},
    "admin_password": {"sealed": "v1:a"}, "db_password": {"sealed": "v1:d"}, "created_at": T0,
    "updated_at": T0, "restarted_at": T0, "observed_at": T0, "worker": "w", "duration_ms": 5,
    "output": "ok", "status": "healthy", "container_state": "running", "http_status": 200,
    "response_time_ms": 12.0, "restart_count": 0, "oom_killed": False, "cpu_percent": 3.0,
    "memory_bytes": 600_000_000, "memory_limit_bytes": 2_684_354_560, "message": "ok",
    "window": {"started_at": T0, "probes": 10, "failures": 0, "latency_p50_ms": 12.0,
               "latency_p95_ms": 30.0, "latency_max_ms": 41.0, "restarts": 0, "oom_kills": 0,
               "peak_memory_bytes": None},
}  # fmt: skip
USER, WORKER = (
    EventMetadata(actor=actor, org_id="org-bench", correlation_id=str(uuid.uuid4()), client_ip=ip)
    for actor, ip in ((Actor("user-1", "Bench User"), "203.0.113.7"), (system_actor("w"), None))
)
E = TypeVar("E", bound=DomainEvent)
Emitted = tuple[str, DomainEvent, EventMetadata]


def event(kind: type[E], **fields: Any) -> E:
    return msgspec.convert(DEFAULTS | fields, kind)


class Fleet:
    """A deterministic history: 64 sagas in flight, the next event from a random one."""

    def __init__(self, instance_events_only: bool = False) -> None:
        self.rng = random.Random(7)
        self.only = instance_events_only
        self.running: list[str] = []
        self.sagas: list[Iterator[Emitted]] = []

    def events(self) -> Iterator[Emitted]:
        while True:
            while len(self.sagas) < 64:
                self.sagas.append(self._saga())
            saga = self.sagas[self.rng.randrange(len(self.sagas))]
            try:
                yield next(saga)
            except StopIteration:
                self.sagas.remove(saga)

    def _saga(self) -> Iterator[Emitted]:
        roll = self.rng.random()
        if len(self.running) < 50 or roll < 0.15:
            return self._create(str(uuid.UUID(int=self.rng.getrandbits(128))))
        instance_id = self.rng.choice(self.running)
        if roll < 0.35:
            return self._act(instance_id, self.rng.choice(("start", "stop", "restart")))
        if roll < 0.5 or self.only:
            name = f"renamed-{self.rng.randrange(10**6)}"
            update = event(InstanceUpdated, instance_id=instance_id, name=name)
            return iter([(f"instance-{instance_id}", update, USER)])
        heartbeat = event(HealthObserved, instance_id=instance_id)
        return iter([(f"health-{instance_id}", heartbeat, WORKER)] * 3)

    def _create(self, instance_id: str) -> Iterator[Emitted]:
        stream, op, slug = f"instance-{instance_id}", str(uuid.uuid4()), f"i-{instance_id[:12]}"
        secret = {"API_KEY": {"sealed": "v1:" + secrets.token_urlsafe(24)}}
        yield stream, event(
            InstanceCreated, instance_id=instance_id, name=slug, slug=slug, db_name=slug,
            auto_subdomain=f"{slug}.odoo.example", env_vars=secret,
        ), USER  # fmt: skip
        yield stream, event(ProvisioningRequested, instance_id=instance_id, operation_id=op), USER
        yield from self._operation(op, "provision", instance_id, 8)
        yield stream, event(InstanceProvisioned, instance_id=instance_id, operation_id=op), WORKER
        self.running.append(instance_id)

    def _act(self, instance_id: str, action: str) -> Iterator[Emitted]:
        stream, op = f"instance-{instance_id}", str(uuid.uuid4())
        yield stream, event(
            ActionRequested, instance_id=instance_id, action=action, operation_id=op
        ), USER  # fmt: skip
        yield from self._operation(op, action, instance_id, 4)
        done: dict[str, type[DomainEvent]] = {
            "start": InstanceStarted,
            "stop": InstanceStopped,
            "restart": InstanceRestarted,
        }
        yield stream, event(done[action], instance_id=instance_id, operation_id=op), WORKER

    def _operation(self, op: str, kind: str, instance_id: str, steps: int) -> Iterator[Emitted]:
        if self.only:
            return
        stream = f"operation-{op}"
        yield stream, event(
            OperationStarted, operation_id=op, type=kind, instance_id=instance_id
        ), WORKER  # fmt: skip
        for n in range(steps):
            yield stream, event(OperationStepCompleted, operation_id=op, step=f"step-{n}"), WORKER
        yield stream, event(OperationSucceeded, operation_id=op), WORKER


def _copy_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


async def load(conninfo: str, events: Iterator[Emitted], count: int) -> None:
    """Append `count` more events with COPY, 20,000 per transaction."""
    columns = "stream_id, version, event_type, schema_version, data, metadata, event_id"
    metadata = {id(m): _copy_field(msgspec.json.encode(m).decode()) for m in (USER, WORKER)}
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute("SELECT stream_id, version FROM streams")
        versions: dict[str, int] = dict(await cur.fetchall())
        for first in range(0, count, 20_000):
            lines = []
            for stream, event, meta in (next(events) for _ in range(min(20_000, count - first))):
                version = versions[stream] = versions.get(stream, 0) + 1
                lines.append(
                    f"{stream}\t{version}\t{event.event_type()}\t{event.schema_version}\t"
                    f"{_copy_field(encode_event(event))}\t{metadata[id(meta)]}\t{uuid.uuid4()}\n"
                )
            async with (
                conn.cursor() as cur,
                cur.copy(f"COPY events ({columns}) FROM STDIN") as copy,
            ):
                await copy.write("".join(lines))
        await conn.execute(
            "INSERT INTO streams SELECT stream_id, max(version) FROM events GROUP BY 1"
            " ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version"
        )
        await conn.commit()


# A rebuild in a process of its own; VmHWM is its peak RSS since exec (ru_maxrss would
# include the parent's, inherited through fork).
REBUILD = """
import asyncio, sys, time
from events.catalog import build_registry
from events.pool import open_pool
from projections.catalog import build_projections
from projections.runtime.rebuild import rebuild

async def main():
    pool = await open_pool(sys.argv[1], max_size=2)
    started = time.perf_counter()
    await rebuild(pool, build_projections(build_registry())[sys.argv[2]])
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(time.perf_counter() - started, peak.split()[1])

asyncio.run(main())
"""

PROJECTORS = """
import asyncio, sys
from events.pool import open_pool
from projections.run import run_projections

async def main():
    await run_projections(await open_pool(sys.argv[1], max_size=8), sys.argv[1], asyncio.Event())

asyncio.run(main())
"""


def _python(script: str, *args: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", script, *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout)


def rebuild_row(conninfo: str, log: str, size: int, name: str) -> str:
    """The median of three rebuilds (the machine may be shared), and the largest peak RSS."""
    turns = []
    for _ in range(3):
        out, _ = _python(REBUILD, conninfo, name, stdout=subprocess.PIPE).communicate()
        turns.append((float(out.split()[0]), int(out.split()[1]) / 1024))
    seconds, rss = statistics.median(t[0] for t in turns), max(t[1] for t in turns)
    row = f"| {log} | {size:,} | {name} | {size / seconds:,.0f} | {seconds:.1f} | {rss:.0f} MB |"
    print(row, flush=True)
    return row


async def _until(condition: Callable[[], Awaitable[bool]], interval: float) -> None:
    while not await condition():  # noqa: ASYNC110 - the database or another process changes it
        await asyncio.sleep(interval)


async def _caught_up(conn: psycopg.AsyncConnection[Any], names: list[str]) -> bool:
    cur = await conn.execute(
        "SELECT count(*) FROM checkpoints c, (SELECT tx_id, position FROM events"
        " ORDER BY position DESC LIMIT 1) e"
        " WHERE c.name = ANY(%s) AND (c.tx_id, c.position) >= (e.tx_id, e.position)",
        (names,),
    )
    row = await cur.fetchone()
    return row is not None and row[0] == len(names)


async def measure_lag(
    conninfo: str, pool: Pool, events: Iterator[Emitted], rate: int, seconds: float
) -> tuple[float, Lags]:
    """Append `rate` events/s for 3 s of warm-up and then `seconds`, one event per append, by
    WRITERS appenders (one appender alone, waiting for each commit, keeps up about 1,100/s
    here), each stream's events by one of them in order; for each event of the latter that a
    projection reads, the time from the append's commit until that projection's checkpoint
    (committed with its rows) covers it. Also the rate the appends kept up (events/s)."""
    reads = {p.name: set(p.stream_types) for p in build_projections(build_registry()).values()}
    store, written, samples = EventStore(pool), list[tuple[str, int, float]](), []
    done = asyncio.Event()

    async def watch() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            while not done.is_set():
                cur = await conn.execute(
                    "SELECT name, tx_id::text::bigint, position FROM checkpoints"
                )
                samples.append((time.monotonic(), {n: (t, p) for n, t, p in await cur.fetchall()}))
                await asyncio.sleep(0.001)

    async def append(queue: asyncio.Queue[tuple[int, Emitted] | None]) -> None:
        while (item := await queue.get()) is not None:
            n, (stream, event, meta) = item
            result = await store.append(stream, ANY, [event], meta)
            label = stream if n >= 3 * rate else "warm-up"
            written.append((label, result.position, time.monotonic()))

    watcher = asyncio.create_task(watch())
    queues: list[asyncio.Queue[tuple[int, Emitted] | None]] = [
        asyncio.Queue() for _ in range(WRITERS)
    ]
    appenders = [asyncio.create_task(append(queue)) for queue in queues]
    start = time.monotonic()
    measured_from = start + 3
    for n in range(int(rate * (seconds + 3))):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        emitted = next(events)
        queues[zlib.crc32(emitted[0].encode()) % WRITERS].put_nowait((n, emitted))
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*appenders)
    measured = [w for w in written if w[0] != "warm-up"]
    achieved = len(measured) / (max(w[2] for w in measured) - measured_from)
    async with pool.connection() as conn:
        await _until(lambda: _caught_up(conn, list(reads)), 0.01)
        cur = await conn.execute(
            "SELECT position, tx_id::text::bigint FROM events WHERE position = ANY(%s)",
            ([position for _, position, _ in written],),
        )
        tx_of = dict(await cur.fetchall())
    caught_up = time.monotonic()
    await _until(lambda: _after(samples[-1][0], caught_up), 0.001)  # the watcher saw it too
    done.set()
    await watcher
    lags: dict[str, list[float]] = {}
    for name, kinds in reads.items():
        index, lags[name] = 0, []
        for stream, position, committed in sorted(written, key=lambda w: (tx_of[w[1]], w[1])):
            while samples[index][1].get(name, (0, 0)) < (tx_of[position], position):
                index += 1
            if stream_type(stream) in kinds:
                lags[name].append(max(0.0, samples[index][0] - committed))
    return achieved, lags


async def _after(moment: float, than: float) -> bool:
    return moment > than


def _percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] * 1000


Lags = dict[str, list[float]]


def report(
    rows: list[str], lags: dict[int, tuple[float, Lags]], args: argparse.Namespace, pg: str
) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores ({platform.machine()}),"
        f" {pg} on the same machine, Python {platform.python_version()}, psycopg"
        f" {psycopg.__version__}; 1-minute load average {args.load[0]:.1f} at the start and"
        f" {os.getloadavg()[0]:.1f} at the end (other work on the machine slows every figure)."
        " *fleet*: the generated history described in `bench/projections.py` (about 15%"
        " instance events, 62% operation steps, 22% health heartbeats); *instances only*: every"
        " event on an instance stream, most of them audited. Each rebuild is `projections"
        " rebuild` (the projection's streams read stream after stream, 5,000 events at a time,"
        " the next chunk read on a second connection meanwhile; each stream folded once, up to"
        " 5,000 rows held in memory, audit entries COPYed; built UNLOGGED, made LOGGED, then the"
        " secondary indexes, then the swap) in a process of its own, on a log loaded by COPY"
        " just before; each row is the median of three.",
        "",
        "| log | events | projection | rebuild events/s | seconds | peak RSS |",
        "|---|---:|---|---:|---:|---:|",
        *rows,
    ]
    for rate, (achieved, by_projection) in lags.items():
        lines += _lag_table(rate, achieved, by_projection, args.lag_seconds)
    return "\n".join(lines)


def _lag_table(rate: int, achieved: float, lags: Lags, seconds: float) -> list[str]:
    lines = [
        "",
        f"Lag at {rate:,} events/s (kept up: {achieved:,.0f}) for {seconds:.0f} s of the fleet"
        f" history (`EventStore.append`, one event per append, by {WRITERS} appenders; all"
        " projections running in a process"
        " of their own): from an append's commit until the projection's checkpoint, committed"
        " with its rows, covers it; over the events of the streams each projection reads.",
        "",
        "| projection | events | p50 | p99 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, lag in lags.items():
        if len(lag) < 2:
            continue
        p50, p99 = _percentile(lag, 50), _percentile(lag, 99)
        lines.append(
            f"| {name} | {len(lag):,} | {p50:.1f} ms | {p99:.1f} ms | {max(lag) * 1000:.1f} ms |"
        )
    return lines


async def _database(admin: str, name: str, drop: bool = False) -> str:
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        if not drop:
            await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return make_conninfo(admin, dbname=name)


async def run(args: argparse.Namespace, admin: str) -> str:
    rows: list[str] = []
    for log, fleet in (("fleet", Fleet()), ("instances only", Fleet(instance_events_only=True))):
        database = f"bench_projections_{secrets.token_hex(4)}"
        conninfo = await _database(admin, database)
        await migrate(conninfo)
        events, loaded = fleet.events(), 0
        sizes = (args.events // 4, args.events // 2, args.events)
        for size in sizes if log == "fleet" else (args.events // 4,):
            await load(conninfo, events, size - loaded)
            loaded = size
            rows += [rebuild_row(conninfo, log, size, name) for name in ("instances", "audit")]
        if log == "fleet":
            lags = await _lag_run(conninfo, events, args)
        await _database(admin, database, drop=True)
    async with await psycopg.AsyncConnection.connect(admin) as conn:
        cur = await conn.execute("SELECT split_part(version(), ' on ', 1)")
        row = await cur.fetchone()
    return report(rows, lags, args, row[0] if row else "PostgreSQL")


async def _lag_run(
    conninfo: str, events: Iterator[Emitted], args: argparse.Namespace
) -> dict[int, tuple[float, Lags]]:
    """The lag at each rate of `args.rates`, in turn, against one process of projectors."""
    pool = await open_pool(conninfo, max_size=WRITERS)
    projections = build_projections(build_registry())
    for name in ("servers", "operations", "health"):
        await rebuild(pool, projections[name])
    runners = _python(PROJECTORS, conninfo)
    try:
        async with pool.connection() as conn:
            await _until(lambda: _caught_up(conn, list(projections)), 0.05)
            await conn.execute("CHECKPOINT")  # not the flush of the rebuilds' writes
        return {
            rate: await measure_lag(conninfo, pool, events, rate, args.lag_seconds)
            for rate in args.rates
        }
    finally:
        runners.terminate()
        runners.wait(timeout=30)
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a server to use (default: a private one)")
    parser.add_argument("--events", type=int, help="fleet log size (default 1,000,000)")
    parser.add_argument(
        "--rates", default="500,2000", help="events/s of the lag runs, one after the other"
    )
    parser.add_argument("--lag-seconds", type=float, help="length of the lag run (default 30)")
    parser.add_argument("--quick", action="store_true", help="100,000 events, 5 s of lag")
    args = parser.parse_args()
    args.events = args.events or (100_000 if args.quick else 1_000_000)
    args.lag_seconds = args.lag_seconds or (5.0 if args.quick else 30.0)
    args.rates = [int(rate) for rate in args.rates.split(",")]
    args.load = os.getloadavg()
    if args.database_url is None:
        import pgserver

        server = pgserver.get_server(  # type: ignore[attr-defined]
            Path(tempfile.mkdtemp(prefix="bench-pg-")), cleanup_mode="delete"
        )
        args.database_url = str(server.get_uri())
    section = asyncio.run(run(args, args.database_url))
    print(section)
    if not args.quick:
        write_section("projections", "Projections", section)


if __name__ == "__main__":
    main()
