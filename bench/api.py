"""Requests per second and latency of the HTTP API beside a bare Litestar baseline.

    python -m bench.api [--database-url URL] [--nats-url URL] [--seconds N] [--quick]

Two uvicorn processes with the same server settings run side by side: the real app
(`api.app.create_app`: JWT auth, permissions, validation, read-your-writes, problem+json) and a
bare Litestar app that runs the same single SQL query through the same kind of pool with no
auth. The projections run in a third process. Measured, each at 1, 16 and 64 concurrent
keep-alive connections: GET /api/instances/{id}, GET /api/instances?limit=50 (a page of 50) and
POST /api/instances (the baseline appends the same two events in one statement, no slug or port
reservation, no secrets). Targets: GET detail >= 0.7x the baseline's requests/s; POST p99 <=
30 ms at 16 connections. Each cell alternates the two apps for ROUNDS turns; the table goes to
stdout and, unless --quick, into bench/README.md between the `api` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import psycopg
from litestar import Litestar, delete, get, patch, post
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.services import open_api_pool
from api.tokens import mint_token
from bench.readme import README, write_section
from events.instance import (
    InstanceCreated,
    InstanceProvisioned,
    InstanceSettings,
    ProvisioningRequested,
    instance_stream,
)
from events.log_reads import last_position
from events.metadata import Actor, EventMetadata
from events.migrate import migrate
from events.pool import Pool
from events.secrets import Sealed
from events.store import NO_STREAM, EventStore, NewEvents
from odoofleet.settings import Settings, load_settings
from projections.catalog import NAMES
from projections.instances import get_instance, list_instances
from projections.waiting import wait_for_position

CONCURRENCY = (1, 16, 64)
ENDPOINTS = (
    "GET detail", "GET list (50)", "POST create", "PATCH update", "POST control", "DELETE",
)  # fmt: skip
# Control and delete each need an instance that allows them (a running one, restarted or
# removed once): before each of their cells the bench provisions this many, with their
# events appended directly (no saga runs here).
RUNNING = 12000
ROUNDS = 3
SERVERS = 8
SEEDED = 200
ORG = "org-bench"
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parent.parent

# Both servers run with exactly these settings (one process each, uvloop and httptools when
# installed, no access log), so the difference is the app.
SERVE = """
import sys, uvicorn
from odoofleet.settings import load_settings
kind, port = sys.argv[1], int(sys.argv[2])
settings = load_settings()
if kind == "real":
    from api.app import create_app
    app = create_app(settings.for_api())
else:
    from bench.api import baseline_app
    app = baseline_app(settings)
uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
"""
PROJECT = """
import asyncio
from events.pool import open_pool
from odoofleet.runtime import run_until_signalled
from odoofleet.settings import load_settings
from projections.run import run_projections
settings = load_settings()
async def main(stop):
    pool = await open_pool(settings.database_url, max_size=4)
    try:
        await run_projections(pool, settings.database_url, stop)
    finally:
        await pool.close()
run_until_signalled(main)
"""


# --- the baseline -------------------------------------------------------------------------------


class _Create(msgspec.Struct, rename="camel"):
    name: str
    server_id: str


_SETTINGS = InstanceSettings(
    workers=1,
    max_cron_threads=1,
    limit_memory_hard=2,
    limit_memory_soft=1,
    limit_time_cpu=60,
    limit_time_real=120,
    log_level="info",
)


def _created(instance_id: str, server_id: str, name: str) -> InstanceCreated:
    sealed = Sealed("v1:none")
    return InstanceCreated(
        instance_id=instance_id, name=name, slug=instance_id, server_id=server_id,
        project_id=None, template_id=None, branch=None, environment_type="development",
        odoo_version="19.0", odoo_edition="community", addons_path=None, env_vars={},
        auto_subdomain=f"{instance_id}.example", http_port=8069, longpolling_port=8072,
        http_port_host=20000, longpolling_port_host=20001, settings=_SETTINGS,
        mcp_write_enabled=False, db_name="x", admin_password=sealed, db_password=sealed,
        created_at=datetime.now(UTC),
    )  # fmt: skip


def baseline_app(settings: Settings) -> Litestar:
    """The same SQL through the same kind of pool, and nothing else: no auth, no checks."""
    state: dict[str, Pool] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["pool"] = await open_api_pool(settings.for_api())
        yield
        await state["pool"].close()

    @get("/baseline/instances/{instance_id:str}")
    async def detail(instance_id: str) -> msgspec.Raw:
        view = await get_instance(state["pool"], ORG, instance_id)
        return msgspec.Raw(msgspec.json.encode(view))

    @get("/baseline/instances")
    async def page(limit: int = 50) -> msgspec.Raw:
        views, cursor = await list_instances(
            state["pool"], ORG, server_id=None, status=None, limit=limit, cursor=None
        )
        return msgspec.Raw(msgspec.json.encode({"instances": views, "nextCursor": cursor}))

    @post("/baseline/instances", status_code=202)
    async def create(data: _Create) -> dict[str, str]:
        instance_id = str(uuid.uuid4())
        created = _created(instance_id, data.server_id, data.name)
        requested = ProvisioningRequested(
            instance_id=instance_id, server_id=data.server_id, operation_id=instance_id
        )
        meta = EventMetadata(actor=Actor("bench", "Bench"), org_id=ORG, correlation_id="bench")
        store = EventStore(state["pool"])
        await store.append(instance_stream(instance_id), NO_STREAM, [created, requested], meta)
        return {"id": instance_id}

    @patch("/baseline/instances/{instance_id:str}")
    async def change(instance_id: str, data: _Change) -> dict[str, str]:
        return await _update(state["pool"], instance_id, "name", data.name)

    @post("/baseline/instances/{instance_id:str}/control", status_code=202)
    async def control(instance_id: str, data: _Control) -> dict[str, str]:
        return await _update(state["pool"], instance_id, "status", f"{data.action}ing")

    @delete("/baseline/instances/{instance_id:str}", status_code=202)
    async def remove(instance_id: str) -> dict[str, str]:
        return await _update(state["pool"], instance_id, "status", "removing")

    handlers = [detail, page, create, change, control, remove]
    return Litestar(handlers, lifespan=[lifespan], logging_config=None)


class _Change(msgspec.Struct):
    name: str


class _Control(msgspec.Struct):
    action: str


_UPDATE = {
    column: f"UPDATE instances SET {column} = %s, updated_at = now()"
    " WHERE org_id = %s AND id = %s RETURNING id".encode()
    for column in ("name", "status")
}


async def _update(pool: Pool, instance_id: str, column: str, value: str) -> dict[str, str]:
    """The baseline of every write to an existing instance: one UPDATE of its row."""
    async with pool.connection() as conn:
        await conn.execute(_UPDATE[column], (value, ORG, instance_id))
    return {"id": instance_id}


# --- the load -----------------------------------------------------------------------------------


@dataclass
class Cell:
    latencies: list[float]
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: int) -> float:
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[q - 1] * 1000


async def _response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def load(port: int, requests: Iterator[bytes], connections: int, warmup: float,
               seconds: float) -> Cell:  # fmt: skip
    """Keep-alive connections sending one request at a time; only responses that finish
    inside the window are counted."""
    start = time.perf_counter() + warmup
    end = start + seconds
    cell = Cell([], 0, seconds)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                sent = time.perf_counter()
                writer.write(next(requests))
                status = await _response(reader)
                done = time.perf_counter()
                if done > end:
                    return
                if done >= start:
                    cell.latencies.append(done - sent)
                    cell.errors += status >= 400
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    return cell


def _get(path: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n{auth}\r\n".encode()


def _post(path: str, body: bytes, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _request(method: str, path: str, token: str | None, body: bytes = b"") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    kind = "Content-Type: application/json\r\n" if body else ""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: bench\r\n{auth}{kind}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Seeded:
    """What the requests address: seeded instances (their ids cycle; the baseline's writes
    update their rows) and running ones, each taken once by odoofleet's control or delete."""

    ids: list[str]
    servers: list[str]
    running: Iterator[str]


def requests_for(endpoint: str, prefix: str, token: str | None, seeded: Seeded) -> Iterator[bytes]:
    ids, servers = seeded.ids, seeded.servers
    if endpoint == "GET detail":
        return (_get(f"{prefix}/instances/{i}", token) for i in itertools.cycle(ids))
    if endpoint == "GET list (50)":
        return itertools.repeat(_get(f"{prefix}/instances?limit=50", token))
    if endpoint == "PATCH update":
        return (
            _request("PATCH", f"{prefix}/instances/{i}", token,
                     msgspec.json.encode({"name": f"renamed {secrets.token_hex(6)}"}))
            for i in itertools.cycle(ids)
        )  # fmt: skip
    baseline = token is None
    if endpoint == "POST control":
        body = msgspec.json.encode({"action": "restart"})
        return (
            _request("POST", f"{prefix}/instances/{i}/control", token, body)
            for i in (itertools.cycle(ids) if baseline else seeded.running)
        )
    if endpoint == "DELETE":
        return (
            _request("DELETE", f"{prefix}/instances/{i}", token)
            for i in (itertools.cycle(ids) if baseline else seeded.running)
        )
    names = (f"bench {secrets.token_hex(6)}" for _ in itertools.count())
    return (
        _post(f"{prefix}/instances", msgspec.json.encode({"name": n, "serverId": s}), token)
        for n, s in zip(names, itertools.cycle(servers), strict=False)
    )


# --- the run ------------------------------------------------------------------------------------


@asynccontextmanager
async def fresh_database(url: str) -> AsyncIterator[str]:
    name = f"bench_{secrets.token_hex(4)}"
    admin = make_conninfo(**(conninfo_to_dict(url) | {"dbname": "postgres"}))
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield make_conninfo(**(conninfo_to_dict(url) | {"dbname": name}))
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@asynccontextmanager
async def process(
    script: str, env: dict[str, str], *args: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield child
    finally:
        child.terminate()
        await child.wait()


async def until_up(port: int, path: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(300):
            try:
                if (await client.get(path)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


async def seed(port: int, token: str, pool: Pool) -> tuple[list[str], list[str]]:
    """Servers and instances (two env vars each) made through the real API."""
    headers = {"Authorization": f"Bearer {token}"}
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        servers = []
        for n in range(SERVERS):
            body = {"name": f"s{n}", "host": f"10.0.0.{n + 1}", "sshUser": "deploy",
                    "authMethod": "key", "sshPrivateKey": key}  # fmt: skip
            servers.append((await client.post("/api/servers", json=body)).json()["id"])
        ids, position = [], 0
        for n in range(SEEDED):
            body = {"name": f"seed {n}", "serverId": servers[n % SERVERS],
                    "envVars": {"DB_HOST": "db", "API_KEY": secrets.token_hex(16)}}  # fmt: skip
            response = await client.post("/api/instances", json=body)
            ids.append(response.json()["id"])
            position = int(response.headers["x-position"])
    if not await wait_for_position(pool, position, timeout=60, projections=("instances",)):
        raise RuntimeError("the projections did not catch up with the seed")
    return ids, servers


async def settled(pool: Pool) -> None:
    """Wait until every projection has applied the whole log. Each cell starts from a quiet
    log: creates at 64 connections outrun the projections and a seeding appends 12,000
    instances at once, and a cell measured while the projections work through that backlog
    (about a core's worth) measured the backlog (PATCH at 1 connection: 4.5 ms p50 right
    after the creates, 2.4 ms once settled)."""
    async with pool.connection() as conn:
        head = await last_position(conn)
    if head and not await wait_for_position(pool, head, timeout=600, projections=NAMES):
        raise RuntimeError("the projections did not catch up with the log")


async def seed_running(pool: Pool, servers: list[str], count: int) -> list[str]:
    """Running instances, their events appended directly (created, provisioning requested,
    provisioned): what control and delete need, which the bench has no worker to make."""
    store = EventStore(pool)
    meta = EventMetadata(actor=Actor("bench", "Bench"), org_id=ORG, correlation_id="bench")
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for start in range(0, count, 500):
        batch = []
        for n, instance_id in enumerate(ids[start : start + 500], start):
            server_id, operation_id = servers[n % len(servers)], str(uuid.uuid4())
            created = msgspec.structs.replace(
                _created(instance_id, server_id, f"running {n}"),
                http_port_host=30000 + 2 * (n // len(servers)),
                longpolling_port_host=30001 + 2 * (n // len(servers)),
            )
            events = [
                created,
                ProvisioningRequested(
                    instance_id=instance_id, server_id=server_id, operation_id=operation_id
                ),
                InstanceProvisioned(
                    instance_id=instance_id, operation_id=operation_id, active_color="blue"
                ),
            ]
            batch.append(NewEvents(instance_stream(instance_id), NO_STREAM, events, meta))
        result = await store.append_batch(batch)
    if not await wait_for_position(pool, result[-1].position, timeout=120,
                                   projections=("instances",)):  # fmt: skip
        raise RuntimeError("the projections did not catch up with the running instances")
    return ids


@dataclass(frozen=True)
class Stack:
    """Both apps and the projections running on a fresh database, with what a bench needs to
    address them (ports, a token for odoofleet, a pool on the database)."""

    url: str
    pool: Pool
    token: str
    real: int
    bare: int
    projections: asyncio.subprocess.Process
    ours: asyncio.subprocess.Process
    baseline: asyncio.subprocess.Process


@asynccontextmanager
async def running_stack(database_url: str, nats_url: str) -> AsyncIterator[Stack]:
    async with fresh_database(database_url) as url:
        await migrate(url)
        env = os.environ | {
            "DATABASE_URL": url, "NATS_URL": nats_url,
            "ODOOFLEET_JWT_SECRET": secrets.token_urlsafe(48),
            "ODOOFLEET_SECRET_KEY": secrets.token_urlsafe(32), "ODOOFLEET_LOG_FORMAT": "text",
            "PYTHONPATH": str(ROOT),
        }  # fmt: skip
        settings = load_settings(env)
        token = mint_token(settings.for_api(), org=ORG, sub="bench",
                           permissions=["manage:instances", "manage:servers"],
                           ttl_seconds=3600)  # fmt: skip
        real, bare = 18000 + secrets.randbelow(1000), 19000 + secrets.randbelow(1000)
        pool = await open_api_pool(settings.for_api(), max_size=2)
        try:
            async with (
                process(PROJECT, env) as projections,
                process(SERVE, env, "real", str(real)) as ours,
                process(SERVE, env, "baseline", str(bare)) as baseline,
            ):
                await until_up(real, "/healthz")
                await until_up(bare, "/baseline/instances?limit=1")
                yield Stack(url, pool, token, real, bare, projections, ours, baseline)
        finally:
            await pool.close()


async def run(args: argparse.Namespace) -> tuple[str, str]:
    warmup, seconds = (0.2, 0.5) if args.quick else (1.0, args.seconds)
    async with running_stack(args.database_url, args.nats_url) as stack:
        pool = stack.pool
        ids, servers = await seed(stack.real, stack.token, pool)
        seeded = Seeded(ids, servers, iter(()))
        rows: list[Row] = []
        for endpoint in args.endpoints:
            for connections in args.concurrency:
                if endpoint in ("POST control", "DELETE"):
                    seeded.running = iter(await seed_running(pool, servers, RUNNING))
                await settled(pool)
                turns: dict[str, list[Cell]] = {"odoofleet": [], "baseline": []}
                for _ in range(ROUNDS):
                    for name, port, prefix, auth in (
                        ("baseline", stack.bare, "/baseline", None),
                        ("odoofleet", stack.real, "/api", stack.token),
                    ):
                        requests = requests_for(endpoint, prefix, auth, seeded)
                        cell = await load(port, requests, connections, warmup, seconds)
                        turns[name].append(cell)
                rows.append(Row(endpoint, connections, turns["odoofleet"], turns["baseline"]))
                print(rows[-1].line(), flush=True)
        facts = await machine_facts(stack.url, warmup, seconds)
    table = "\n".join(TABLE_HEAD + [r.line() for r in rows])
    return facts, f"{table}\n\n{verdict(rows)}\n\n{WHERE_POST_GOES}"


TABLE_HEAD = [
    "| endpoint | conns | odoofleet req/s | baseline req/s | ratio | odoofleet p50 / p99 ms"
    " | baseline p50 / p99 ms | errors |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
]


def merged(cells: list[Cell]) -> Cell:
    return Cell([x for c in cells for x in c.latencies], sum(c.errors for c in cells),
                sum(c.seconds for c in cells))  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One cell: the turns of both apps, taken in alternation."""

    endpoint: str
    connections: int
    ours_turns: list[Cell]
    base_turns: list[Cell]

    @property
    def ratio(self) -> float:
        # Turns next to each other in time share the machine's mood (other work on it):
        # the median of their ratios is steadier than the ratio of the totals.
        pairs = zip(self.ours_turns, self.base_turns, strict=True)
        return statistics.median(ours.rate / base.rate for ours, base in pairs)

    def line(self) -> str:
        ours, base = merged(self.ours_turns), merged(self.base_turns)
        rate = statistics.median(c.rate for c in self.ours_turns)
        base_rate = statistics.median(c.rate for c in self.base_turns)
        return (
            f"| {self.endpoint} | {self.connections} | {rate:,.0f} | {base_rate:,.0f}"
            f" | {self.ratio:.2f} | {ours.percentile(50):.1f} / {ours.percentile(99):.1f}"
            f" | {base.percentile(50):.1f} / {base.percentile(99):.1f}"
            f" | {ours.errors} / {base.errors} |"
        )


def verdict(rows: list[Row]) -> str:
    """Issue 19's targets, each against the baseline in the same run."""
    lines = []
    for endpoint, floor in (("GET detail", 0.85), ("GET list (50)", 0.9)):
        cells = [r for r in rows if r.endpoint == endpoint]
        if cells:
            ratios = ", ".join(f"{r.ratio:.2f} at {r.connections}" for r in cells)
            met = all(r.ratio >= floor for r in cells)
            lines.append(f"{endpoint} >= {floor}x: {ratios} ({'met' if met else 'NOT met'}).")
    for endpoint in ("POST create", "PATCH update", "POST control", "DELETE"):
        at = {r.connections: r for r in rows if r.endpoint == endpoint}
        if 16 in at and 1 in at:
            busy, alone = at[16], at[1]
            p99 = merged(busy.ours_turns).percentile(99) / merged(busy.base_turns).percentile(99)
            p50 = merged(alone.ours_turns).percentile(50) / merged(alone.base_turns).percentile(50)
            met = busy.ratio >= 0.3 and p99 <= 3 and p50 <= 2
            lines.append(
                f"{endpoint}: at 16 connections {busy.ratio:.2f}x the baseline's req/s"
                f" (>= 0.3) and p99 {p99:.1f}x its p99 (<= 3); at 1 connection p50"
                f" {p50:.1f}x its p50 (<= 2): {'met' if met else 'NOT met'}."
            )
    return "\n".join(lines)


WHERE_POST_GOES = """\
Where a create's time goes (issue 19): the baseline is one statement. A create is now 3 round
trips to PostgreSQL: one query reads the server's, the slug's, the host name's and the ports'
streams (the ports from this process's snapshot on); the Vault stores the instance's new data
key (its own commit, no WAL flush wait); ONE statement takes the four streams' locks, claims
their versions, inserts the events and aborts unless every claim matched. The 202 body is
folded from the events just stored (no read back), and the legacy host-name query is asked
once per process. The NOTIFY that wakes the log readers follows, coalesced (one per 5 ms at
most). In process (`python -m bench.profile_api`), CPU per create went from 3.2-3.4 ms to
2.3-2.8 ms, client included; what is left is mostly psycopg's per-statement work and the
event loop's wake-ups (one per round trip), then Litestar, msgspec and our code (about 5%).
PATCH, control and DELETE (issue 19) no longer read the stream back: the answer is folded
from the events decided and stored (a view remembered per process, moved on by them). A
write on an instance this process wrote before decides on the state it remembers, proved
current by the append's expected version (a conflict, a refusal or nothing to do on it reads
the stream and decides again): one append. Otherwise the stream is read, then appended to.
The health fields are the read models' (as a GET shows them), read while the write runs.
So 1-2 round trips in the request's path against the baseline's one UPDATE, plus the
coalesced NOTIFY. The projections, the client and PostgreSQL share the same two cores with
the API, so at 16 connections every round trip also waits its turn for a core."""


async def machine_facts(url: str, warmup: float, seconds: float) -> str:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SHOW server_version")
        row_ = await cur.fetchone()
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {os.cpu_count()} cores"
        f" ({platform.machine()}), PostgreSQL {row_[0] if row_ else '?'} on the same machine,"
        f" Python {platform.python_version()}; client, both servers, the projections and"
        f" PostgreSQL share the cores. Each cell: {ROUNDS} turns per app, alternating, each"
        f" {seconds:g} s after {warmup:g} s of warm-up, once every projection has applied the"
        f" whole log; one uvicorn process per app. Rates are"
        f" the median turn; the ratio is the median of adjacent turns' ratios; percentiles pool"
        f" all turns. The machine is shared with other work: load average at the end"
        f" {os.getloadavg()[1]:.1f} (5 min)."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--seconds", type=float, default=4.0, help="per turn (default: 4)")
    parser.add_argument("--quick", action="store_true", help="short turns; leave README be")
    parser.add_argument(
        "--endpoint", action="append", choices=ENDPOINTS, help="only these (README left be)"
    )
    parser.add_argument(
        "--connections",
        action="append",
        type=int,
        choices=CONCURRENCY,
        help="only these (README left be; 64 holds about 70 of PostgreSQL's connections)",
    )
    args = parser.parse_args(argv)
    args.endpoints = args.endpoint or ENDPOINTS
    args.concurrency = args.connections or CONCURRENCY
    return args


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    facts, table = await run(args)
    print(f"\n{facts}\n\n{table}")
    if not args.quick and args.endpoint is None and args.connections is None:
        write_section("api", "HTTP API", f"{facts}\n\n{table}")
        print(f"\nwritten to {README}")


if __name__ == "__main__":
    asyncio.run(main())
