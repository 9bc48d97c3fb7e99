"""Webhook fan-out: 1,000 events x 10 endpoints against receivers on 127.0.0.1, while an 11th
endpoint's receiver hangs on every call.

    python -m bench.webhooks [--database-url URL] [--nats-url URL] [--events N] [--endpoints N]
                             [--rate EVENTS_PER_SECOND]

`odoofleet relay`, `odoofleet project` and `odoofleet work` (sagas idle, the webhook worker
delivering) run as processes of their own on a fresh database and JetStream stream; this
process runs the receivers, appends the events one by one and samples the relay's and the
projections' lag (log head minus checkpoint, in positions) every 0.2 s. Reported: deliveries
per second (first append to last delivery), event-to-delivery latency (append returned →
receiver read the request) p50/p99/max, and the largest lag seen while the hanging receiver
held its lane.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import nats
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from commands import webhook
from commands.runner import execute_command
from events.metadata import Actor, EventMetadata
from events.migrate import migrate
from events.pool import Pool, open_pool
from events.secrets import Vault
from events.server import ServerReachable, ServerRegistered, server_stream
from events.store import ANY, NO_STREAM, EventStore
from events.webhook import webhook_stream
from workers.webhooks.signing import new_secret

ORG = "org-bench"
ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-master-key-not-for-production"
META = EventMetadata(actor=Actor(id="bench", name="bench"), org_id=ORG, correlation_id="bench")
_OK = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class Receiver:
    """Reads requests on keep-alive connections; notes when each webhook-id first arrived."""

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.first_seen: dict[str, float] = {}
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                at = time.monotonic()
                headers = dict(
                    line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
                )
                lowered = {name.lower(): value for name, value in headers.items()}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                self.requests += 1
                self.first_seen.setdefault(lowered["webhook-id"], at)
                if self.hang:
                    await self._closing.wait()
                    return
                writer.write(_OK)
                await writer.drain()
        writer.close()


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
async def odoofleet(command: str, env: dict[str, str], log: Path) -> AsyncIterator[None]:
    with log.open("ab") as out:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "odoofleet", command, cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        yield
    finally:
        child.terminate()
        await child.wait()


async def create_endpoints(pool: Pool, urls: list[str]) -> None:
    store, vault = EventStore(pool), Vault(pool, SECRET_KEY)
    for url in urls:
        endpoint_id = str(uuid.uuid4())
        stream_id = webhook_stream(endpoint_id)
        command = webhook.CreateWebhook(
            endpoint_id=endpoint_id,
            url=url,
            events=["server.reachable"],
            description="bench",
            enabled=True,
            secret=await vault.seal(stream_id, new_secret()),
        )
        await execute_command(
            store,
            stream_id,
            webhook.fold,
            webhook.decide,
            command,
            datetime.now(UTC),
            META,
        )


async def append_events(pool: Pool, count: int, rate: float) -> dict[str, float]:
    """`count` server.reachable events, one append each (`rate` a second at most, 0: as fast
    as they go); when each append returned."""
    store = EventStore(pool)
    server_id = str(uuid.uuid4())
    registered = ServerRegistered(
        server_id=server_id,
        name="bench",
        host="192.0.2.1",
        port=22,
        ssh_user="root",
        auth_method="key",
        ssh_private_key=None,
        ssh_password=None,
        host_key=None,
        max_ssh_sessions=1,
        created_at=datetime.now(UTC),
    )
    await store.append(server_stream(server_id), NO_STREAM, [registered], META)
    appended: dict[str, float] = {}
    began = time.monotonic()
    for n in range(count):
        if rate:
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
        event_id = uuid.uuid4()
        event = ServerReachable(server_id=server_id, observed_at=datetime.now(UTC))
        await store.append(server_stream(server_id), ANY, [event], META, [event_id])
        appended[str(event_id)] = time.monotonic()
    return appended


async def lags(pool: Pool) -> tuple[int, int]:
    """(relay lag, the slowest projection's lag), in log positions."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT coalesce((SELECT max(position) FROM events), 0),"
            " coalesce((SELECT position FROM checkpoints WHERE name = 'relay'), 0),"
            " coalesce((SELECT min(position) FROM checkpoints WHERE name <> 'relay'), 0)"
        )
        row = await cur.fetchone()
    assert row is not None
    head, relay, projections = (int(value) for value in row)
    return head - relay, head - projections


async def run(args: argparse.Namespace) -> str:
    token = secrets.token_hex(4)
    stream = f"BENCH_{token.upper()}"
    async with fresh_database(args.database_url) as url:
        await migrate(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "NATS_URL": args.nats_url,
            "ODOOFLEET_SECRET_KEY": SECRET_KEY,
            "ODOOFLEET_NATS_STREAM": stream,
            "ODOOFLEET_SUBJECT_PREFIX": f"b{token}",
            "ODOOFLEET_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "ODOOFLEET_LOG_FORMAT": "text",
            "ODOOFLEET_LOG_LEVEL": "WARNING",
        }
        quick = [Receiver() for _ in range(args.endpoints)]
        hanging = Receiver(hang=True)
        for receiver in (*quick, hanging):
            await receiver.start()
        pool = await open_pool(url, max_size=4)
        logs = Path(args.logs)
        try:
            async with (
                odoofleet("relay", env, logs / "relay.log"),
                odoofleet("project", env, logs / "project.log"),
                odoofleet("work", env, logs / "work.log"),
            ):
                urls = [f"http://127.0.0.1:{r.port}/hook" for r in (*quick, hanging)]
                await create_endpoints(pool, urls)
                await until(
                    lambda: all(r.first_seen for r in (*quick, hanging)), 120, "test events"
                )
                await caught_up(pool, 120)
                samples: list[tuple[int, int]] = []
                sampling = asyncio.create_task(sample(pool, samples))
                started = time.monotonic()
                appended = await append_events(pool, args.events, args.rate)
                appending = time.monotonic() - started
                total = args.events * args.endpoints

                def delivered() -> int:
                    return sum(len(set(r.first_seen) & set(appended)) for r in quick)

                await until(lambda: delivered() == total, args.timeout, "every delivery")
                await until(lambda: samples[-1:] == [(0, 0)], args.timeout, "the log caught up")
                finished = max((max(r.first_seen.values()) for r in quick), default=started)
                sampling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampling
                settled = await lags(pool)
        finally:
            await pool.close()
            for receiver in (*quick, hanging):
                await receiver.close()
            await delete_stream(args.nats_url, stream)
    latencies = sorted(
        (r.first_seen[event_id] - at) * 1000 for r in quick for event_id, at in appended.items()
    )
    return report(args, total, finished - started, appending, latencies, samples, settled, hanging)


def report(
    args: argparse.Namespace,
    total: int,
    elapsed: float,
    appending: float,
    latencies: list[float],
    samples: list[tuple[int, int]],
    settled: tuple[int, int],
    hanging: Receiver,
) -> str:
    latencies = latencies or [0.0]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    relay_max = max((s[0] for s in samples), default=0)
    projection_max = max((s[1] for s in samples), default=0)
    return "\n".join(
        [
            f"{args.events} events x {args.endpoints} endpoints = {total} deliveries,"
            f" plus 1 endpoint whose receiver hangs ({hanging.requests} calls held)",
            f"appends: {args.events / appending:.0f}/s ({appending:.1f} s)",
            f"deliveries: {total / max(elapsed, 1e-9):.0f}/s ({elapsed:.1f} s from first append"
            " to last delivery)",
            f"event-to-delivery latency: p50 {statistics.median(latencies):.0f} ms,"
            f" p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms",
            f"lag while delivering (max over {len(samples)} samples): relay {relay_max},"
            f" projections {projection_max} positions; after: relay {settled[0]},"
            f" projections {settled[1]}",
        ]
    )


async def caught_up(pool: Pool, seconds: float) -> None:
    """Relay and projections at the log's head (the processes are up and idle)."""
    for _ in range(int(seconds / 0.05)):
        if await lags(pool) == (0, 0):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the log did not catch up within {seconds:g} s")


async def sample(pool: Pool, samples: list[tuple[int, int]]) -> None:
    while True:
        samples.append(await lags(pool))
        await asyncio.sleep(0.2)


async def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {seconds:g} s")
        await asyncio.sleep(0.02)


async def delete_stream(nats_url: str, stream: str) -> None:
    nc = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.webhooks", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--nats-url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: unpaced)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--logs", default="/tmp", help="where the processes' logs go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    print(asyncio.run(run(parse_args(argv))))


if __name__ == "__main__":
    main()
