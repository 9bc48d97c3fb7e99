"""Two of each (issue 19, item 7): real `odoofleet serve`, `project` and `work` processes
against one PostgreSQL and one NATS, one of a kind against two, and one of each killed.

    python -m bench.scaleout [--database-url URL] [--nats-url URL] [--quick]

Three parts, each in a fresh database `bench_<random>` and a JetStream stream and subject
prefix of its own (both removed at the end), so nothing else on the machine sees them:

1. Creates: `bench.api`'s load (its client, its requests) at 16 and 64 connections against
   one `serve` and against two (the connections split between the two ports, as a load
   balancer that balances connections would), in alternating turns. A relay and two
   `project` run meanwhile; no `work` (the servers are addresses nobody answers on, as in
   `bench.api`, so no saga would get anywhere).
2. Health: the observer inside `work` over sshd of `bench.health_servers` (canned `docker`),
   first with one `work`, then with a second one standing by, then with the leader killed.
   The heartbeat is shorter than a cycle, so every cycle records every instance: the cycle
   time is read from the recorded events (the gap between one instance's observations).
3. Kills under load: two of each (and a relay) with sagas running against sshd with the
   tests' stand-in `docker`. Creates (one at a time, provisioned for real by the sagas) and
   renames (as fast as they go) alternate between the two `serve`; one `serve`, the `project`
   that leads the most projections and a `work` with a provisioning in flight are SIGKILLed
   one after another. Then: every 2xx-answered create reached its end state (provisioned,
   the operation's every step completed exactly once, the read model shows it running),
   every 2xx-answered rename is in the log and the read model shows the log's last name.

Unless --quick, the tables go into bench/README.md between the `scaleout` markers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sshd_harness import SshdServer  # noqa: E402

from api.tokens import mint_token  # noqa: E402
from bench.api import ORG, Cell, Seeded, fresh_database, load, requests_for, seed  # noqa: E402
from bench.health import provision, register  # noqa: E402
from bench.health_servers import BenchSshd, listen  # noqa: E402
from bench.readme import write_section  # noqa: E402
from events.jetstream import connect_nats  # noqa: E402
from events.migrate import migrate  # noqa: E402
from events.pool import Pool, open_pool  # noqa: E402
from events.secrets import Vault  # noqa: E402
from events.store import EventStore  # noqa: E402
from odoofleet.sandbox.server import stop_standin_servers  # noqa: E402
from odoofleet.settings import load_settings  # noqa: E402
from projections.catalog import NAMES  # noqa: E402
from projections.waiting import wait_for_position  # noqa: E402

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"
PARTS = ("creates", "health", "kills")
CONNECTIONS = (16, 64)
# How long the provisionings answered 202 may take to end, after the load stops: one work is
# left, and each runs two provisionings of an organization at a time.
CHECK_SECONDS = 900
ROUNDS = 3


# --- processes ---------------------------------------------------------------------------------


class Processes:
    """`python -m odoofleet ...` children, each named (its ODOOFLEET_WORKER_NAME too) and
    logging to a file of its own."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = self.env | {"ODOOFLEET_WORKER_NAME": name}
        with (self.logs / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "odoofleet", *args],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.children[name] = child
        return child

    def check(self) -> None:
        """Raise if a child ended that nobody killed (its log says why)."""
        for name, child in self.children.items():
            if child.poll() is not None and name not in self.killed:
                raise RuntimeError(f"{name} ended ({child.returncode}): see {name}.log")

    def kill(self, name: str) -> datetime:
        """SIGKILL: no shutdown of any kind. Returns when it died."""
        child = self.children[name]
        self.killed.add(name)
        child.send_signal(signal.SIGKILL)
        child.wait()
        return datetime.now(UTC)

    def stop_all(self) -> None:
        alive = [c for c in self.children.values() if c.poll() is None]
        for child in alive:
            child.send_signal(signal.SIGTERM)
        for child in alive:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@contextlib.asynccontextmanager
async def world(args: argparse.Namespace, logs: Path, **extra: str) -> AsyncIterator[World]:
    """A fresh database and JetStream stream, the environment of the processes, a pool."""
    tag = secrets.token_hex(4)
    async with fresh_database(args.database_url) as url:
        await migrate(url)
        env = os.environ | {
            "DATABASE_URL": url, "NATS_URL": args.nats_url,
            "ODOOFLEET_JWT_SECRET": secrets.token_urlsafe(48),
            "ODOOFLEET_SECRET_KEY": secrets.token_urlsafe(32),
            "ODOOFLEET_NATS_STREAM": f"BENCH_SCALEOUT_{tag}",
            "ODOOFLEET_SUBJECT_PREFIX": f"scaleout{tag}",
            # The sshd of the health and kill parts listen on loopback.
            "ODOOFLEET_SERVER_ALLOWED_NETWORKS": "127.0.0.0/8",
            "ODOOFLEET_LOG_FORMAT": "text",
            "ODOOFLEET_LOG_LEVEL": os.environ.get("ODOOFLEET_LOG_LEVEL", "WARNING"),
            "PYTHONPATH": str(ROOT),
        } | extra  # fmt: skip
        processes = Processes(env, logs)
        pool = await open_pool(url, max_size=4)
        try:
            yield World(url, env, processes, pool)
        finally:
            processes.stop_all()
            await pool.close()
            await _drop_stream(args.nats_url, env["ODOOFLEET_NATS_STREAM"])


async def _drop_stream(nats_url: str, name: str) -> None:
    nc = await connect_nats(nats_url, "bench-scaleout")
    try:
        with contextlib.suppress(Exception):  # never created: nothing to drop
            await nc.jetstream().delete_stream(name)
    finally:
        await nc.close()


@dataclass
class World:
    url: str
    env: dict[str, str]
    processes: Processes
    pool: Pool

    def token(self) -> str:
        settings = load_settings(self.env)
        return mint_token(
            settings.for_api(), org=ORG, sub="bench",
            permissions=["manage:instances", "manage:servers"], ttl_seconds=7200,
        )  # fmt: skip

    async def serve(self, name: str) -> int:
        port = 18000 + secrets.randbelow(2000)
        self.processes.start(name, "serve", "--port", str(port))
        await until(lambda: _answers(port), 180, f"{name} answering", self.processes)
        return port


async def _answers(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def until(
    condition: Callable[[], Any], within: float, what: str, watch: Processes | None = None
) -> None:
    """Wait on a condition (sync or async) with a deadline, while `watch`'s children live."""
    deadline = time.monotonic() + within
    while True:
        if watch is not None:
            watch.check()
        met = condition()
        if asyncio.iscoroutine(met):
            met = await met
        if met:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {within:g} s")
        await asyncio.sleep(0.05)


# --- 1. creates against one serve and two ------------------------------------------------------


async def split_load(
    ports: list[int], requests: Iterator[bytes], connections: int, warmup: float, seconds: float
) -> Cell:
    """`bench.api.load` with the connections split between the ports, one window for all."""
    share = [connections // len(ports) + (n < connections % len(ports)) for n in range(len(ports))]
    cells = await asyncio.gather(
        *(
            load(port, requests, count, warmup, seconds)
            for port, count in zip(ports, share, strict=True)
        )
    )
    return Cell([x for c in cells for x in c.latencies], sum(c.errors for c in cells), seconds)


async def creates(args: argparse.Namespace, logs: Path) -> str:
    warmup, seconds = (0.3, 1.0) if args.quick else (1.0, 4.0)
    async with world(args, logs) as w:
        w.processes.start("relay", "relay")
        w.processes.start("project-1", "project")
        w.processes.start("project-2", "project")
        ports = [await w.serve("serve-1"), await w.serve("serve-2")]
        token = w.token()
        ids, servers = await seed(ports[0], token, w.pool)
        # Creates address the servers only; the other fields (instances for control and
        # delete, which bench.api changes as it grows) stay empty.
        seeded = Seeded(ids, servers, **{f.name: iter(()) for f in dataclasses.fields(Seeded)[2:]})
        lines = []
        for connections in CONNECTIONS:
            turns: dict[int, list[Cell]] = {1: [], 2: []}
            for _ in range(ROUNDS):
                for serves in (1, 2):
                    requests = requests_for("POST create", "/api", token, seeded)
                    cell = await split_load(ports[:serves], requests, connections, warmup, seconds)
                    turns[serves].append(cell)
            ratio = statistics.median(
                two.rate / one.rate for one, two in zip(turns[1], turns[2], strict=True)
            )
            for serves in (1, 2):
                pooled = Cell(
                    [x for c in turns[serves] for x in c.latencies],
                    sum(c.errors for c in turns[serves]), seconds,
                )  # fmt: skip
                rate = statistics.median(c.rate for c in turns[serves])
                lines.append(
                    f"| POST create | {connections} | {serves} | {rate:,.0f}"
                    f" | {pooled.percentile(50):.1f} / {pooled.percentile(99):.1f}"
                    f" | {pooled.errors} | {'' if serves == 1 else f'{ratio:.2f}'} |"
                )
                print(lines[-1], flush=True)
    return "\n".join(
        [
            "| endpoint | conns | serve processes | req/s | p50 / p99 ms | errors | two ÷ one |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *lines,
        ]
    )


# --- 2. the health cycle with one work and two -------------------------------------------------


_OBSERVED = (
    b"SELECT stream_id, (data->>'observed_at')::timestamptz, metadata->'actor'->>'id'"
    b" FROM events WHERE event_type = 'HealthObserved' ORDER BY position"
)


@dataclass
class Observations:
    """Every HealthObserved so far: per instance stream, (when, by which worker)."""

    by_stream: dict[str, list[tuple[datetime, str]]] = field(default_factory=dict)

    @classmethod
    async def read(cls, pool: Pool) -> Observations:
        found: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        async with pool.connection() as conn:
            for stream, at, actor in await (await conn.execute(_OBSERVED)).fetchall():
                found[stream].append((at, actor.removeprefix("system:")))
        return cls(dict(found))

    def cycles(self, worker: str | None = None) -> int:
        """Cycles so far: the median instance's observations (of this worker). Not the
        fewest: an instance whose probe failed is unknown, and unknown has no heartbeat."""
        counts = [
            sum(1 for _, w in seen if worker is None or w == worker)
            for seen in self.by_stream.values()
        ]
        return int(statistics.median(counts)) if counts else 0

    def gaps(self, worker: str, after: datetime, before: datetime) -> list[float]:
        """Seconds between one instance's consecutive observations, both by `worker` in the
        window: one cycle each."""
        gaps = []
        for seen in self.by_stream.values():
            mine = [at for at, w in seen if w == worker and after <= at <= before]
            gaps += [(b - a).total_seconds() for a, b in itertools.pairwise(mine)]
        return gaps

    def first_by(self, worker: str, after: datetime) -> datetime:
        return min(at for seen in self.by_stream.values() for at, w in seen
                   if w == worker and at >= after)  # fmt: skip

    def longest_silence(self, around: datetime) -> float:
        """The longest gap in any instance's observations that spans `around`."""
        longest = 0.0
        for seen in self.by_stream.values():
            times = sorted(at for at, _ in seen)
            for a, b in itertools.pairwise(times):
                if a <= around <= b:
                    longest = max(longest, (b - a).total_seconds())
        return longest


async def health(args: argparse.Namespace, logs: Path) -> str:
    servers, per_server = (3, 20) if args.quick else (args.servers, args.per_server)
    cycles = 2 if args.quick else 3
    heartbeat = {"ODOOFLEET_HEALTH_INTERVAL": "0.1", "ODOOFLEET_HEALTH_HEARTBEAT": "0.05"}
    sshds = [BenchSshd(logs / f"health-sshd-{n}") for n in range(servers)]
    listener = None
    try:
        for sshd in sshds:
            sshd.start()
        listener, free = listen(servers * per_server, logs)
        async with world(args, logs, **heartbeat) as w:
            store = EventStore(w.pool)
            vault = Vault(w.pool, w.env["ODOOFLEET_SECRET_KEY"])
            for n, sshd in enumerate(sshds):
                server_id = await register(store, vault, sshd)
                sshd.containers(
                    await provision(store, server_id, free[n * per_server : (n + 1) * per_server])
                )
            # No relay: the instances' ProvisioningRequested must reach no saga.
            w.processes.start("project", "project")
            head, read_models = await _head(w.pool), ("instances", "servers", "health")
            await until(
                lambda: wait_for_position(w.pool, head, timeout=1, projections=read_models),
                120, "the projections caught up with the fleet", w.processes,
            )  # fmt: skip

            async def observed(worker: str | None, count: int) -> Observations:
                seen = Observations()

                async def enough() -> bool:
                    nonlocal seen
                    seen = await Observations.read(w.pool)
                    return seen.cycles(worker) >= count

                await until(enough, 120 + 30 * count, f"{count} cycles by {worker}", w.processes)
                return seen

            w.processes.start("work-1", "work")
            # The first cycle connects; the window starts after it.
            await observed("work-1", 1)
            alone_from = datetime.now(UTC)
            await observed("work-1", cycles + 2)
            w.processes.start("work-2", "work")
            # The cycle work-2's start-up overlaps is left out of the window.
            await observed("work-1", cycles + 3)
            both_from = datetime.now(UTC)
            await observed("work-1", 2 * cycles + 4)
            killed = w.processes.kill("work-1")
            seen = await observed("work-2", cycles + 1)
    finally:
        if listener is not None:
            listener.terminate()
        for sshd in sshds:
            sshd.stop()
    instances = servers * per_server
    alone = seen.gaps("work-1", alone_from, both_from)
    both = seen.gaps("work-1", both_from, killed)
    taken = seen.first_by("work-2", killed)
    after = seen.gaps("work-2", taken, datetime.now(UTC))

    def row(what: str, gaps: list[float]) -> str:
        return (
            f"| {what} | {servers} | {instances:,} | {len(gaps) // instances}"
            f" | {statistics.median(gaps):.2f} | {max(gaps):.2f} |"
        )

    # The windows follow each other (not alternated): a drift of the machine's load
    # between them falls on the comparison; the README says so with the figures.
    table = [
        "| work processes | servers | instances | cycles | cycle s (median) | cycle s (max) |",
        "|---|---:|---:|---:|---:|---:|",
        row("one (work-1 leads)", alone),
        row("two (work-1 leads, work-2 stands by)", both),
        row("one left (work-2 leads after work-1 was SIGKILLed)", after),
    ]
    return "\n".join(table) + (
        f"\n\nHealth observer take-over: work-2's first observation came"
        f" {(taken - killed).total_seconds():.2f} s after work-1 was SIGKILLed (its lock"
        f" retry, its SSH connections, one visit); the longest any instance went unobserved"
        f" across the kill: {seen.longest_silence(killed):.2f} s."
    )


async def _head(pool: Pool) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT coalesce(max(position), 0) FROM events")).fetchone()
    return int(row[0]) if row else 0


# --- 3. kills under load -----------------------------------------------------------------------


class Answer(msgspec.Struct, frozen=True):
    kind: str  # "create" | "rename"
    status: int
    instance_id: str
    name: str
    position: int


@dataclass
class Ledger:
    """What the load was answered."""

    answers: list[Answer] = field(default_factory=list)
    unanswered: Counter[str] = field(default_factory=Counter)  # by kind: transport errors
    refused: Counter[tuple[str, int]] = field(default_factory=Counter)
    refusal: dict[tuple[str, int], str] = field(default_factory=dict)  # the first body of each

    def answered(self, kind: str) -> list[Answer]:
        return [a for a in self.answers if a.kind == kind and 200 <= a.status < 300]

    def created(self) -> list[str]:
        return [a.instance_id for a in self.answered("create")]


async def traffic(
    ports: list[int], token: str, servers: list[str], ledger: Ledger, stop: asyncio.Event,
    create_every: float, renamers: int,
) -> None:  # fmt: skip
    """Creates, one every `create_every` s, and renames as fast as they go; each request
    goes to the next port in turn (the client alternates, as a round-robin balancer does),
    and a port whose connection failed gets no more requests (the balancer's health check).
    So `unanswered` counts the requests a kill cut off, not refused connections after it."""
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", headers=headers, timeout=30)
        for p in ports
    ]
    turn = itertools.count()

    live = list(clients)

    async def send(kind: str, method: str, path: str, body: dict[str, str]) -> None:
        client = live[next(turn) % len(live)]
        try:
            response = await client.request(method, path, json=body)
        except httpx.TransportError:
            ledger.unanswered[kind] += 1
            if client in live and len(live) > 1:
                live.remove(client)
            return
        if response.status_code >= 300:
            ledger.refused[(kind, response.status_code)] += 1
            ledger.refusal.setdefault((kind, response.status_code), response.text[:300])
            return
        instance_id = response.json()["id"] if kind == "create" else path.rsplit("/", 1)[1]
        ledger.answers.append(
            Answer(kind, response.status_code, instance_id, body["name"],
                   int(response.headers.get("x-position", 0)))
        )  # fmt: skip

    async def creating() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            body = {"name": f"scale {secrets.token_hex(4)}", "serverId": servers[n % len(servers)]}
            await send("create", "POST", "/api/instances", body)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), create_every)

    async def renaming() -> None:
        while not stop.is_set():
            created = ledger.created()
            if not created:
                await asyncio.sleep(0.05)
                continue
            instance_id = created[secrets.randbelow(len(created))]
            body = {"name": f"renamed {secrets.token_hex(4)}"}
            await send("rename", "PATCH", f"/api/instances/{instance_id}", body)

    try:
        await asyncio.gather(creating(), *(renaming() for _ in range(renamers)))
    finally:
        for client in clients:
            await client.aclose()


# The leader of each projection holds an advisory lock on a connection labelled
# "odoofleet <projection> <host>:<pid>" (projections/runtime/presence.py).
_LEADERS = (
    b"SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    b" WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()"
    b" AND a.application_name LIKE 'odoofleet %%:%%'"
)


async def _leaders(pool: Pool) -> dict[str, str]:
    """Projection → the pid of the process leading it."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(_LEADERS)).fetchall()
    found = {}
    for (label,) in rows:
        _, projection, where = label.split(" ", 2)
        if projection in NAMES:
            found[projection] = where.rsplit(":", 1)[1]
    return found


_IN_FLIGHT = (
    b"SELECT s.metadata->'actor'->>'id' FROM events s WHERE s.event_type = 'OperationStarted'"
    b" AND NOT EXISTS (SELECT 1 FROM events e WHERE e.stream_id = s.stream_id"
    b" AND e.event_type IN ('OperationSucceeded', 'OperationFailed', 'OperationCancelled'))"
)


async def _busy_workers(pool: Pool) -> set[str]:
    async with pool.connection() as conn:
        rows = await (await conn.execute(_IN_FLIGHT)).fetchall()
    # Validations are operations too; only provisionings count (the work processes' names).
    return {str(row[0]).removeprefix("system:") for row in rows} & {"work-1", "work-2"}


@dataclass
class Kills:
    serve: str = ""
    project: str = ""
    work: str = ""
    takeover: dict[str, float] = field(default_factory=dict)  # projection → seconds
    work_in_flight: int = 0


async def kills(args: argparse.Namespace, logs: Path) -> str:
    phase = 6.0 if args.quick else 10.0
    sshd = SshdServer(logs / "kill-sshd")
    ledger, done = Ledger(), Kills()
    try:
        sshd.start()
        async with world(args, logs) as w:
            w.processes.start("relay", "relay")
            for n in (1, 2):
                w.processes.start(f"project-{n}", "project")
            for n in (1, 2):
                w.processes.start(f"work-{n}", "work", "--root", str(sshd.root),
                                  "--ack-wait", "5")  # fmt: skip
            ports = [await w.serve("serve-1"), await w.serve("serve-2")]
            token = w.token()
            servers = [await _server(ports[0], token, sshd, w.processes)]
            stop = asyncio.Event()
            load_task = asyncio.create_task(
                traffic(ports, token, servers, ledger, stop, create_every=1.0, renamers=4)
            )
            await asyncio.sleep(phase)  # the load running before the first kill
            done.serve = "serve-1"
            w.processes.kill("serve-1")
            await asyncio.sleep(phase)
            leaders = await _leaders(w.pool)
            pids = {str(w.processes.children[f"project-{n}"].pid): f"project-{n}" for n in (1, 2)}
            most = Counter(leaders.values()).most_common(1)[0][0]
            done.project = pids[most]
            led = [name for name, pid in leaders.items() if pid == most]
            w.processes.kill(done.project)
            killed_at = time.monotonic()
            survivor = next(p for p in pids if p != most)

            async def taken_over() -> bool:
                now, leaders = time.monotonic(), await _leaders(w.pool)
                for name in led:
                    if leaders.get(name) == survivor:
                        done.takeover.setdefault(name, now - killed_at)
                return len(done.takeover) == len(led)

            await until(taken_over, 120, "the projections taken over", w.processes)
            await until(lambda: _busy_workers(w.pool), 60, "a provisioning in flight", w.processes)
            done.work = sorted(await _busy_workers(w.pool))[0]
            done.work_in_flight = await _in_flight_of(w.pool, done.work)
            w.processes.kill(done.work)
            await asyncio.sleep(phase)
            stop.set()
            await load_task
            verdict = await check(w.pool, ledger, within=CHECK_SECONDS)
            calls = sshd.docker_argvs()
    finally:
        stop_standin_servers(sshd.state_dir)
        sshd.stop()
    return kill_report(ledger, done, verdict, calls)


async def _server(port: int, token: str, sshd: SshdServer, watch: Processes) -> str:
    body = {
        "name": f"sandbox-{sshd.port}", "host": "127.0.0.1", "port": sshd.port,
        "sshUser": "root", "authMethod": "key", "sshPrivateKey": sshd.client_private_key,
        "hostKey": sshd.host_key_line,
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        response = await client.post("/api/servers", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"server not registered: {response.text}")
        server_id = str(response.json()["id"])

        async def active() -> bool:
            found = await client.get(f"/api/servers/{server_id}")
            return found.status_code == 200 and found.json()["status"] == "active"

        await until(active, 120, "the sandbox server validated", watch)
    return server_id


async def _in_flight_of(pool: Pool, worker: str) -> int:
    async with pool.connection() as conn:
        rows = await (await conn.execute(_IN_FLIGHT)).fetchall()
    return sum(1 for row in rows if row[0] == f"system:{worker}")


_STREAMS = (
    b"SELECT stream_id, event_type, data FROM events WHERE stream_id = ANY(%s) ORDER BY position"
)
_ROW = b"SELECT status, name FROM instances WHERE id = %s"


@dataclass
class Verdict:
    provisioned: int = 0
    failed: list[str] = field(default_factory=list)  # ProvisioningFailed: instance, why
    unfinished: list[str] = field(default_factory=list)  # no end state by the deadline
    progress: dict[str, list[str]] = field(default_factory=dict)  # unfinished: last steps
    missing: list[str] = field(default_factory=list)  # a 2xx answer with nothing in the log
    steps_twice: list[str] = field(default_factory=list)  # operation: step completed twice
    steps_restarted: int = 0  # steps started twice (the killed worker's step, resumed)
    read_model_wrong: list[str] = field(default_factory=list)
    renames_missing: list[str] = field(default_factory=list)


async def check(pool: Pool, ledger: Ledger, within: float) -> Verdict:
    """Every 2xx-answered create reaches its end state; every rename is in the log."""
    created = ledger.created()

    async def streams(ids: list[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        found: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        async with pool.connection() as conn:
            for stream, kind, data in await (await conn.execute(_STREAMS, (ids,))).fetchall():
                found[stream].append((kind, data))
        return found

    ends = ("InstanceProvisioned", "ProvisioningFailed")

    async def all_ended() -> bool:
        found = await streams([f"instance-{i}" for i in created])
        return all(any(k in ends for k, _ in found[f"instance-{i}"]) for i in created)

    with contextlib.suppress(RuntimeError):
        await until(all_ended, within, "every create at its end")
    verdict = Verdict()
    instances = await streams([f"instance-{i}" for i in created])
    operations: dict[str, str] = {}
    for instance_id in created:
        events = instances[f"instance-{instance_id}"]
        kinds = [k for k, _ in events]
        if "InstanceCreated" not in kinds:
            verdict.missing.append(instance_id)
        elif "InstanceProvisioned" in kinds:
            verdict.provisioned += 1
        elif "ProvisioningFailed" in kinds:
            why = next(d for k, d in events if k == "ProvisioningFailed")
            verdict.failed.append(f"{instance_id} at {why['step']}: {why['message'][:200]}")
        else:
            verdict.unfinished.append(instance_id)
        for kind, data in events:
            if kind == "ProvisioningRequested":
                operations[data["operation_id"]] = instance_id
    steps = await streams([f"operation-{o}" for o in operations])
    for operation, instance_id in operations.items():
        if instance_id in verdict.unfinished:  # how far it got: queued, or where it stopped
            got = [f"{k}:{d.get('step', '')}" for k, d in steps[f"operation-{operation}"]]
            verdict.progress[instance_id] = got[-3:] or ["not started"]
    for operation, events in steps.items():
        completed = Counter(d["step"] for k, d in events if k == "OperationStepCompleted")
        started = Counter(d["step"] for k, d in events if k == "OperationStepStarted")
        verdict.steps_twice += [f"{operation}:{s}" for s, n in completed.items() if n > 1]
        verdict.steps_restarted += sum(n - 1 for n in started.values())
    names: dict[str, str] = {}
    for instance_id, events in instances.items():
        for kind, data in events:
            if kind in ("InstanceCreated", "InstanceUpdated") and data.get("name"):
                names[instance_id.removeprefix("instance-")] = data["name"]
    logged = {
        (i.removeprefix("instance-"), d.get("name"))
        for i, events in instances.items() for k, d in events if k == "InstanceUpdated"
    }  # fmt: skip
    verdict.renames_missing = [
        a.name for a in ledger.answered("rename") if (a.instance_id, a.name) not in logged
    ]
    head = await _head(pool)
    await wait_for_position(pool, head, timeout=60, projections=("instances",))
    async with pool.connection() as conn:
        for instance_id in created:
            row = await (await conn.execute(_ROW, (instance_id,))).fetchone()
            failed = any(f.startswith(instance_id) for f in verdict.failed)
            provisioned = not failed and instance_id not in verdict.unfinished
            if (
                row is None
                or row[1] != names.get(instance_id)
                or (provisioned and row[0] != "running")
            ):
                verdict.read_model_wrong.append(f"{instance_id}: {row}")
    return verdict


def kill_report(ledger: Ledger, kills_: Kills, verdict: Verdict, calls: list[list[str]]) -> str:
    creates, renames = ledger.answered("create"), ledger.answered("rename")
    refused = ", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(ledger.refused.items())) or "none"
    takeover = ", ".join(f"{n} {s:.2f} s" for n, s in sorted(kills_.takeover.items()))
    ups = sum(1 for argv in calls if "up" in argv)
    lost = verdict.missing + verdict.renames_missing + verdict.unfinished
    rows = [
        "| | count |",
        "|---|---:|",
        f"| creates answered 202 | {len(creates)} |",
        f"| ... provisioned (operation succeeded, read model `running`) | {verdict.provisioned} |",
        f"| ... provisioning failed (an end state, not the expected one) | {len(verdict.failed)} |",
        f"| ... no end state within {CHECK_SECONDS} s | {len(verdict.unfinished)} |",
        f"| ... not in the log at all | {len(verdict.missing)} |",
        f"| renames answered 200 | {len(renames)} |",
        f"| ... not in the log | {len(verdict.renames_missing)} |",
        f"| requests cut off by the serve kill (no answer) | {sum(ledger.unanswered.values())} |",
        f"| refused (4xx/5xx) | {refused} |",
        f"| steps completed twice (double execution) | {len(verdict.steps_twice)} |",
        f"| steps started again after the work kill (resumed) | {verdict.steps_restarted} |",
        f"| read model rows not matching the log | {len(verdict.read_model_wrong)} |",
        f"| stand-in `docker ... up` calls | {ups} |",
    ]
    ok = not lost and not verdict.steps_twice and not verdict.read_model_wrong
    return "\n".join(rows) + (
        f"\n\nKilled (SIGKILL) in this order, with load running: {kills_.serve}; {kills_.project}"
        f" (it led {len(kills_.takeover)} of {len(NAMES)} projections; the other took each"
        f" over after: {takeover}); {kills_.work} with {kills_.work_in_flight} provisioning(s)"
        f" in flight.\nNothing answered 2xx lost: {'yes' if ok else 'NO — see the details'}."
        + ("" if ok else f"\n\nDetails: {msgspec.json.encode(verdict).decode()}")
        + "".join(f"\n\n{k} {s}, the first answer: {b}" for (k, s), b in ledger.refusal.items())
    )


# --- the run -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, logs: Path) -> str:
    started = os.getloadavg()[1]
    parts = {}
    if "creates" in args.parts:
        parts["creates"] = await creates(args, logs)
        print(parts["creates"], flush=True)
    if "health" in args.parts:
        parts["health"] = await health(args, logs)
        print(parts["health"], flush=True)
    if "kills" in args.parts:
        parts["kills"] = await kills(args, logs)
        print(parts["kills"], flush=True)
    async with await psycopg.AsyncConnection.connect(args.database_url) as conn:
        row = await (await conn.execute("SELECT split_part(version(), ' on ', 1)")).fetchone()
    facts = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores"
        f" ({platform.machine()}), {row[0] if row else 'PostgreSQL'} and NATS on the same"
        f" machine, Python {platform.python_version()}; every process, the client, the sshd"
        f" and PostgreSQL share the cores; load average {started:.1f} at the start and"
        f" {os.getloadavg()[1]:.1f} at the end (5 min)."
    )
    return "\n\n".join([facts, *parts.values()])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--servers", type=int, default=10, help="health part (default 10)")
    parser.add_argument("--per-server", type=int, default=100, help="health part (default 100)")
    parser.add_argument(
        "--part", dest="parts", action="append", choices=PARTS, help="only these (repeatable)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="leave the processes' logs")
    parser.add_argument("--quick", action="store_true", help="short; README untouched")
    args = parser.parse_args()
    every = args.parts is None
    args.parts = args.parts or PARTS
    base = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    print(f"logs: {base}", flush=True)
    try:
        section = asyncio.run(run(args, base))
    finally:
        if not args.keep_logs:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\n{section}")
    if every and not args.quick:
        write_section("scaleout", "Scale-out, two of each", section)


if __name__ == "__main__":
    main()
