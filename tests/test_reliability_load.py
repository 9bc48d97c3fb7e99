"""Sustained mixed load on `odoofleet serve` + `odoofleet relay` + `odoofleet project`, each a
real process: no error answer, every read sees the caller's own writes, memory flat, the read
models caught up seconds after the writes stop. Requests/s, latency, peak RSS and lag are
written to load-report.json in the test's tmp dir and logged.

ODOOFLEET_LOAD_SECONDS sets the duration: 60 by default (CI), 600 for the full run.

No saga workers run: the test stands in for them by appending what they would (the instance
provisioned, stopped, started), so that control actions always meet a status that allows them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec
import pytest
from api_fixtures import mint, server_body
from reliability_fixtures import running
from waiting import eventually

from api.consistency import WAIT_SECONDS
from events.instance import (
    InstanceProvisioned,
    InstanceStarted,
    InstanceStopped,
    instance_stream,
)
from events.metadata import EventMetadata, system_actor
from events.pool import Pool
from events.registry import DomainEvent
from events.store import ANY, EventStore
from odoofleet.embedded import free_port
from odoofleet.settings import Settings
from projections.catalog import NAMES
from projections.runtime.report import report

log = logging.getLogger(__name__)

LOAD_SECONDS: Final = float(os.environ.get("ODOOFLEET_LOAD_SECONDS", "60"))
CLIENTS: Final = 4
ORG: Final = "org-load"
LIVE_PER_CLIENT: Final = 12  # each client deletes its oldest instance beyond this many
SERVERS: Final = 2
# Memory is flat when the last third's peak stays under the first third's peak times this,
# plus a little for allocator noise.
RSS_GROWTH: Final = 1.5
RSS_SLACK_BYTES: Final = 16 << 20
CATCH_UP_SECONDS: Final = 10.0
SAMPLE_SECONDS: Final = 0.5
EXPECTED: Final = {
    "create": 202,
    "detail": 200,
    "list": 200,
    "filtered list": 200,
    "audit": 200,
    "rename": 200,
    "control": 202,
    "delete": 202,
}


Samples = dict[str, list[tuple[float, int]]]  # process → (time, RSS bytes)


class Exchange(msgspec.Struct, frozen=True):
    kind: str
    status: int
    seconds: float


class Tally(msgspec.Struct):
    """Everything the clients saw."""

    exchanges: list[Exchange] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)
    stale_reads: list[str] = msgspec.field(default_factory=list)
    # Reads that showed an older version after waiting out the documented bound.
    bounded_waits: int = 0


class Owned(msgspec.Struct):
    """An instance a client created, with what it last wrote to it."""

    id: str
    version: int
    position: int
    running: bool = True


# ---- the processes -----------------------------------------------------------------------------


@asynccontextmanager
async def control_plane(settings: Settings) -> AsyncIterator[tuple[str, dict[str, int]]]:
    """API, relay and projector as subprocesses; yields the API's URL and each process id."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (
        running(settings, "serve", "--port", str(port)) as api,
        running(settings, "relay") as relay,
        running(settings, "project") as projector,
    ):
        async with httpx.AsyncClient(base_url=base_url, timeout=1) as probe:

            async def answering() -> bool:
                try:
                    return (await probe.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answering, 30, 0.1, "the API answering")
        yield base_url, {"serve": api.pid, "relay": relay.pid, "project": projector.pid}


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def sample_rss(pids: dict[str, int], samples: Samples, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for name, pid in pids.items():
            samples[name].append((time.monotonic(), rss_bytes(pid)))
        await asyncio.sleep(SAMPLE_SECONDS)


async def lag_now(pool: Pool) -> tuple[int, float]:
    """The largest lag of any projection: events not yet applied, and the age of the oldest."""
    async with pool.connection() as conn:
        reports = [await report(conn, name) for name in NAMES]
    return max(r.lag_events for r in reports), max(r.lag_seconds for r in reports)


async def sample_lag(pool: Pool, samples: list[tuple[int, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(await lag_now(pool))
        await asyncio.sleep(1.0)


# ---- one client --------------------------------------------------------------------------------


class LoadClient:
    """One operator of the organization: creates instances, renames, stops and starts them,
    deletes the oldest, and reads lists, details and the audit trail in between. Every write
    is read back with X-Min-Position."""

    def __init__(
        self, http: httpx.AsyncClient, store: EventStore, servers: list[str], tally: Tally
    ) -> None:
        self.http, self.store, self.servers, self.tally = http, store, servers, tally
        self.owned: list[Owned] = []
        self.random = random.Random(id(self))

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            await self.cycle()

    async def cycle(self) -> None:
        await self.create()
        await self.send("list", "GET", "/api/instances", params={"limit": 50})
        if self.owned:
            await self.rename(self.random.choice(self.owned))
        await self.send("audit", "GET", "/api/audit-logs", params={"per_page": 20})
        if self.owned:
            await self.toggle(self.random.choice(self.owned))
        filters = {"server_id": self.random.choice(self.servers), "status": "running", "limit": 20}
        await self.send("filtered list", "GET", "/api/instances", params=filters)
        if len(self.owned) > LIVE_PER_CLIENT:
            await self.send("delete", "DELETE", f"/api/instances/{self.owned.pop(0).id}")

    async def send(
        self, kind: str, method: str, path: str, **options: Any
    ) -> httpx.Response | None:
        """The answer, or None (and an error recorded) when it is not the expected one."""
        started = time.perf_counter()
        try:
            answer = await self.http.request(method, path, **options)
        except httpx.HTTPError as e:
            self.tally.errors.append(f"{kind} {method} {path}: {e!r}")
            return None
        self.tally.exchanges.append(
            Exchange(kind, answer.status_code, time.perf_counter() - started)
        )
        if answer.status_code != EXPECTED[kind]:
            self.tally.errors.append(f"{kind} {method} {path}: {answer.status_code} {answer.text}")
            return None
        return answer

    async def create(self) -> None:
        body = {
            "name": f"Load {uuid.uuid4().hex[:8]}",
            "serverId": self.random.choice(self.servers),
        }
        answer = await self.send("create", "POST", "/api/instances", json=body)
        if answer is None:
            return
        created = Owned(answer.json()["id"], 0, 0)
        self.written(created, answer)
        self.owned.append(created)
        await self.read_back(created)
        await self.as_worker(created, InstanceProvisioned, active_color="blue")

    async def rename(self, instance: Owned) -> None:
        path = f"/api/instances/{instance.id}"
        answer = await self.send("rename", "PATCH", path, json={"name": uuid.uuid4().hex})
        if answer is not None:
            self.written(instance, answer)
            await self.read_back(instance)

    async def toggle(self, instance: Owned) -> None:
        """Stop a running instance or start a stopped one, then do what the worker would."""
        action = "stop" if instance.running else "start"
        path = f"/api/instances/{instance.id}/control"
        answer = await self.send("control", "POST", path, json={"action": action})
        if answer is None:
            return
        self.written(instance, answer)
        await self.as_worker(instance, InstanceStopped if instance.running else InstanceStarted)
        instance.running = not instance.running

    async def as_worker(self, instance: Owned, kind: type[DomainEvent], **fields: Any) -> None:
        """Append the outcome a saga worker would, then read it back through the API."""
        event = kind(instance_id=instance.id, operation_id=str(uuid.uuid4()), **fields)
        metadata = EventMetadata(
            actor=system_actor("load-test"), org_id=ORG, correlation_id=str(uuid.uuid4())
        )
        result = await self.store.append(instance_stream(instance.id), ANY, [event], metadata)
        instance.version, instance.position = result.version, result.positions[-1]
        await self.read_back(instance)

    async def read_back(self, instance: Owned) -> None:
        """Read-your-writes: the detail shows at least the version last written, unless the
        read model was still behind after the documented wait (counted apart)."""
        answer = await self.send(
            "detail",
            "GET",
            f"/api/instances/{instance.id}",
            headers={"X-Min-Position": str(instance.position)},
        )
        if answer is None or answer.json()["version"] >= instance.version:
            return
        if answer.elapsed.total_seconds() >= WAIT_SECONDS:
            self.tally.bounded_waits += 1
            return
        shown = answer.json()["version"]
        self.tally.stale_reads.append(f"{instance.id}: v{shown} < v{instance.version}")

    def written(self, instance: Owned, answer: httpx.Response) -> None:
        """Remember the version and log position a write answered with."""
        instance.version = answer.json()["version"]
        instance.position = int(answer.headers["x-position"])


# ---- figures -----------------------------------------------------------------------------------


def percentile_ms(seconds: list[float], percentile: int) -> float:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return round(cuts[percentile - 1] * 1000, 1)


def latency(exchanges: list[Exchange]) -> dict[str, float]:
    seconds = [e.seconds for e in exchanges]
    return {"p50_ms": percentile_ms(seconds, 50), "p99_ms": percentile_ms(seconds, 99)}


def thirds_peaks(samples: list[tuple[float, int]], window: tuple[float, float]) -> tuple[int, int]:
    """Peak RSS in the first and in the last third of the load."""
    start, end = window
    third = (end - start) / 3
    first = [rss for at, rss in samples if start <= at < start + third]
    last = [rss for at, rss in samples if end - third <= at <= end]
    return max(first), max(last)


def growing(rss: Samples, window: tuple[float, float]) -> dict[str, tuple[int, int]]:
    """Processes whose memory is not flat: the last third's peak above the first third's
    peak times RSS_GROWTH plus RSS_SLACK_BYTES."""
    peaks = {name: thirds_peaks(samples, window) for name, samples in rss.items()}
    return {
        name: (first, last)
        for name, (first, last) in peaks.items()
        if last > first * RSS_GROWTH + RSS_SLACK_BYTES
    }


def memory(rss: Samples, window: tuple[float, float]) -> dict[str, dict[str, float]]:
    def mib(n: int) -> float:
        return round(n / 2**20, 1)

    found = {}
    for name, samples in rss.items():
        first, last = thirds_peaks(samples, window)
        peak = max(r for _, r in samples)
        found[name] = {
            "peak": mib(peak),
            "first_third_peak": mib(first),
            "last_third_peak": mib(last),
        }
    return found


def figures(
    tally: Tally,
    seconds: float,
    rss: Samples,
    window: tuple[float, float],
    lag: list[tuple[int, float]],
    catch_up: float,
) -> dict[str, Any]:
    kinds = sorted({e.kind for e in tally.exchanges})
    return {
        "seconds": round(seconds, 1),
        "clients": CLIENTS,
        "requests": len(tally.exchanges),
        "requests_per_second": round(len(tally.exchanges) / seconds, 1),
        **latency(tally.exchanges),
        "by_kind": {k: latency([e for e in tally.exchanges if e.kind == k]) for k in kinds},
        "errors": len(tally.errors),
        "stale_reads": len(tally.stale_reads),
        "reads_past_the_wait_bound": tally.bounded_waits,
        "rss_mib": memory(rss, window),
        "max_lag_events": max(events for events, _ in lag),
        "max_lag_seconds": round(max(age for _, age in lag), 2),
        "catch_up_seconds": round(catch_up, 2),
    }


async def catch_up_seconds(pool: Pool) -> float:
    """How long after now every projection has applied the whole log."""
    started = time.monotonic()

    async def caught_up() -> bool:
        return (await lag_now(pool))[0] == 0

    await eventually(caught_up, CATCH_UP_SECONDS, 0.05, "every projection caught up")
    return time.monotonic() - started


# ---- the test ----------------------------------------------------------------------------------


async def new_servers(base_url: str, token: str) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as admin:
        answers = [
            await admin.post("/api/servers", json=server_body(name=f"load-{n}"))
            for n in range(SERVERS)
        ]
    assert [a.status_code for a in answers] == [201] * SERVERS
    return [a.json()["id"] for a in answers]


async def load(
    base_url: str, settings: Settings, store: EventStore, servers: list[str]
) -> tuple[Tally, float]:
    """CLIENTS clients for LOAD_SECONDS; the tally and how long it took."""
    tally = Tally()
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        clients = []
        for n in range(CLIENTS):
            token = mint(settings, org=ORG, sub=f"operator-{n}", ttl=LOAD_SECONDS + 600)
            http = httpx.AsyncClient(
                base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            clients.append(LoadClient(await stack.enter_async_context(http), store, servers, tally))
        await asyncio.gather(*(c.run(started + LOAD_SECONDS) for c in clients))
    return tally, time.monotonic() - started


@pytest.mark.heavy
async def test_a_sustained_mixed_load_gets_no_errors_with_flat_memory_and_bounded_lag(
    settings: Settings, store: EventStore, pool: Pool, tmp_path: Path
) -> None:
    rss: Samples = defaultdict(list)
    lag: list[tuple[int, float]] = []
    stop = asyncio.Event()
    async with control_plane(settings) as (base_url, pids):
        servers = await new_servers(base_url, mint(settings, org=ORG, sub="admin"))
        samplers = [
            asyncio.create_task(sample_rss(pids, rss, stop)),
            asyncio.create_task(sample_lag(pool, lag, stop)),
        ]
        started = time.monotonic()
        try:
            tally, seconds = await load(base_url, settings, store, servers)
            window = (started, time.monotonic())
            catch_up = await catch_up_seconds(pool)
        finally:
            stop.set()
            await asyncio.gather(*samplers)

    found = figures(tally, seconds, rss, window, lag, catch_up)
    (tmp_path / "load-report.json").write_text(json.dumps(found, indent=2))
    log.warning("load figures: %s", json.dumps(found))
    assert tally.errors == []
    assert tally.stale_reads == []
    reads = sum(1 for e in tally.exchanges if e.kind == "detail")
    assert tally.bounded_waits <= reads / 100, found
    assert growing(rss, window) == {}, found
