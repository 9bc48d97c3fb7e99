"""The health observer (DESIGN.md "Health"): once per interval it visits every server, runs ONE
SSH command there for all its instances (`health_command`), and appends HealthObserved when an
instance's status changes or its heartbeat is due.

One observer is active at a time across all worker processes (a PostgreSQL advisory lock; the
others stand by and take over within a second of its death). Its memory is only the windows
since the last events: a new leader restores the last status, stream version and restart
baseline of each instance from the health read model, so taking over is not a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

import msgspec
import psycopg
from psycopg_pool import PoolTimeout

from commands.instance_state import Abandoned, Removed, Removing, fold
from events.errors import WrongExpectedVersion
from events.health import HealthObserved, health_stream
from events.instance import instance_stream
from events.leader import LeaderLock
from events.metadata import EventMetadata, system_actor
from events.pool import Pool
from events.secrets import Vault
from events.store import NO_STREAM, EventStore, ExpectedVersion, NewEvents
from projections.health_score import FRESH_SECONDS
from workers.health.fleet import WatchedInstance, WatchedServer, load_fleet
from workers.health.probe import ContainerSample, HealthTarget, health_command, parse_health_output
from workers.health.servers import ServerLinks, outage_command
from workers.health.window import (
    Reading,
    Tracker,
    due,
    observation,
    recorded,
    restore,
    stopped,
    take_sample,
    unseen,
)
from workers.server.remote import failure_text
from workers.ssh.connection import ServerConnectionInfo
from workers.ssh.errors import ServerUnreachable, SshError
from workers.ssh.runner import SshRunner

log = logging.getLogger(__name__)

LEADER_LOCK: Final = "odoofleet:health-observer"
# A server's command may take longer than a short test interval: a probe that hangs holds
# its slot for PROBE_TIMEOUT_SECONDS (a server's probes run PROBE_CONCURRENCY at a time).
MIN_COMMAND_SECONDS: Final = 15.0


class ObserverConfig(msgspec.Struct, frozen=True, kw_only=True):
    interval: float = 30.0  # settings.health_interval
    heartbeat: float = 300.0  # settings.health_heartbeat
    connect_timeout: float = 10.0
    concurrency: int = 32  # servers visited at once


class CycleReport(msgspec.Struct, frozen=True, kw_only=True):
    servers: int
    instances: int
    appended: int
    seconds: float


class _Visit(msgspec.Struct):
    """One server's answer: samples by instance id, or why there are none."""

    samples: dict[str, ContainerSample]
    failure: str | None = None
    unreachable: bool = False


class _Pending(msgspec.Struct):
    instance_id: str
    tracker: Tracker
    event: HealthObserved
    append: NewEvents


class HealthObserver:
    def __init__(
        self,
        pool: Pool,
        store: EventStore,
        vault: Vault,
        runner: SshRunner,
        *,
        worker: str,
        config: ObserverConfig | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config or ObserverConfig()
        self._pool, self._store, self._runner = pool, store, runner
        self._links = ServerLinks(store, vault, self.config.connect_timeout)
        self._worker = worker
        self._clock = clock
        self._trackers: dict[str, Tracker] = {}

    async def run(self, stop: asyncio.Event, conninfo: str) -> None:
        """Observe as the leader, or stand by, until `stop` is set."""
        if self.config.heartbeat + self.config.interval > FRESH_SECONDS:
            log.warning(
                "health heartbeat %gs + interval %gs exceed %gs: an unchanged instance will "
                "lose its score's freshness between two records",
                self.config.heartbeat,
                self.config.interval,
                FRESH_SECONDS,
            )
        lock = LeaderLock(conninfo, LEADER_LOCK)
        while not stop.is_set():
            if not await lock.acquire(stop):
                return
            log.info("health observer %s: leading", self._worker)
            try:
                self._trackers.clear()  # another leader may have recorded meanwhile
                await self._lead(stop, lock)
            finally:
                await lock.release()

    async def _lead(self, stop: asyncio.Event, lock: LeaderLock) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                report = await self.observe_once()
                log.debug("health cycle: %s", report)
            except* (psycopg.OperationalError, PoolTimeout) as group:  # a visit's, or the read
                log.warning("health observer: database unavailable (%s)", group.exceptions[0])
            if not await lock.still_held():
                log.error("health observer %s: lost its leader lock; standing by", self._worker)
                return
            pause = max(0.0, started + self.config.interval - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def observe_once(self) -> CycleReport:
        """One cycle: every server visited once, concurrently."""
        started = time.monotonic()
        fleet = await load_fleet(self._pool)
        gate = asyncio.Semaphore(max(1, self.config.concurrency))

        async def visit(server: WatchedServer) -> int:
            async with gate:
                return await self._visit(server)

        async with asyncio.TaskGroup() as group:
            visits = [group.create_task(visit(server)) for server in fleet]
        watched = {i.id for server in fleet for i in server.instances}
        self._trackers = {k: v for k, v in self._trackers.items() if k in watched}
        return CycleReport(
            servers=len(fleet),
            instances=len(watched),
            appended=sum(v.result() for v in visits),
            seconds=time.monotonic() - started,
        )

    async def _visit(self, server: WatchedServer) -> int:
        running = [i for i in server.instances if i.status == "running" and i.active_color]
        answer = await self._ask(server, running)
        at = self._clock()
        meta = self._metadata(server.org_id)
        outage = outage_command(server.status, answer.unreachable, answer.failure or "")
        if outage is not None:
            await self._links.record(server.id, outage, at, meta)
        pending: list[_Pending] = []
        for instance in server.instances:
            tracker = self._trackers.get(instance.id) or restore(instance.last, at)
            self._trackers[instance.id] = tracker
            reading = self._reading(instance, tracker, answer, at)
            if reading is None or not due(tracker, reading, at, self.config.heartbeat):
                continue
            if reading.status != "healthy" and await self._being_removed(instance.id):
                # Its teardown takes its containers down: nothing to judge any more.
                self._trackers.pop(instance.id, None)
                continue
            event = observation(tracker, instance.id, server.id, reading, at)
            expected: ExpectedVersion = tracker.version or NO_STREAM
            append = NewEvents(health_stream(instance.id), expected, [event], meta)
            pending.append(_Pending(instance.id, tracker, event, append))
        return await self._append(pending)

    async def _being_removed(self, instance_id: str) -> bool:
        """Asked of the instance's own stream, which the read model the fleet came from may
        lag: a removal asked for a moment ago counts."""
        state = fold((await self._store.load_stream(instance_stream(instance_id))).events)
        return isinstance(state, Removing | Abandoned | Removed)

    async def _ask(self, server: WatchedServer, running: list[WatchedInstance]) -> _Visit:
        """Run the server's one command: the samples of its running instances (or, with none
        running, a bare `true` that only proves the server answers).

        The colour observed is the one running at probe time: the read model's activeColor
        lags a blue/green switch (the old colour is stopped before InstanceRedeployed is
        recorded, and projected after), so an instance whose active colour is not running is
        looked at again as its other colour, and that one's sample counts if it runs."""
        targets = [_target(i, i.active_color or "") for i in running]
        try:
            info = await self._links.connection(server.id, server.version)
            visit = await self._samples(info, targets)
            if visit.failure is not None:
                return visit
            stopped = [i for i in running if not _runs(visit.samples.get(i.id))]
            if stopped:
                others = [_target(i, _other(i.active_color)) for i in stopped]
                again = await self._samples(info, others)
                for sample in again.samples.values():
                    if sample.container_state == "running":
                        visit.samples[sample.instance_id] = sample
            return visit
        except ServerUnreachable as e:
            return _Visit({}, f"server unreachable: {e}", unreachable=True)
        except (SshError, ValueError, LookupError) as e:
            return _Visit({}, f"cannot observe the server: {e}")

    async def _samples(self, info: ServerConnectionInfo, targets: list[HealthTarget]) -> _Visit:
        command = health_command(targets) if targets else "true"
        limit = max(self.config.interval, MIN_COMMAND_SECONDS)
        result = await self._runner.run(info, command, time_limit=limit)
        if not result.ok:
            return _Visit({}, f"health command failed: {failure_text(result)}")
        try:
            samples = parse_health_output(result.stdout) if targets else []
        except (msgspec.DecodeError, ValueError) as e:
            return _Visit({}, f"health command output unreadable: {e}")
        return _Visit({s.instance_id: s for s in samples})

    def _reading(
        self, instance: WatchedInstance, tracker: Tracker, answer: _Visit, at: datetime
    ) -> Reading | None:
        if instance.status == "stopped":
            return stopped()
        if answer.unreachable:
            return Reading("unknown", answer.failure or "server unreachable", None, False)
        sample = answer.samples.get(instance.id)
        if sample is None:
            why = answer.failure or "the health command returned nothing for it"
            return unseen(tracker, why, at, self.config.interval)
        return take_sample(tracker, sample, at)

    async def _append(self, pending: list[_Pending]) -> int:
        """All of a server's events in one transaction; on a version conflict (a second
        leader for a moment) each on its own, the conflicting ones restored from the read
        model and decided again next cycle."""
        if not pending:
            return 0
        try:
            results = await self._store.append_batch([p.append for p in pending])
        except WrongExpectedVersion:
            return sum([await self._append_one(p) for p in pending])
        for p, result in zip(pending, results, strict=True):
            recorded(p.tracker, p.event, result.version)
        return len(pending)

    async def _append_one(self, p: _Pending) -> int:
        a = p.append
        try:
            result = await self._store.append(a.stream_id, a.expected_version, a.events, a.metadata)
        except WrongExpectedVersion:
            self._trackers.pop(p.instance_id, None)
            return 0
        recorded(p.tracker, p.event, result.version)
        return 1

    def _metadata(self, org_id: str) -> EventMetadata:
        return EventMetadata(
            actor=system_actor(self._worker), org_id=org_id, correlation_id=str(uuid.uuid4())
        )


def _target(instance: WatchedInstance, color: str) -> HealthTarget:
    return HealthTarget(instance.id, instance.slug, color, instance.http_port_host)


def _other(color: str | None) -> str:
    return "blue" if color == "green" else "green"


def _runs(sample: ContainerSample | None) -> bool:
    return sample is not None and sample.container_state == "running"
