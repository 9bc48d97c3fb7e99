"""The saga workers of one process: a durable JetStream consumer per trigger event type
(one filter subject each: NATS 2.9 has no multi-filter consumers), several fetch loops on
each. Every `odoofleet work` process joins the same durables, so they compete for the work.
Beside them runs the health observer, leader or standby (workers/health/observer.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import Final, NamedTuple

import msgspec
import nats.errors
import psycopg

from events.jetstream import connect_nats, ensure_stream
from events.log_context import log_context
from events.pool import Pool
from events.publishing import WireEvent
from events.secrets import Vault
from events.store import EventStore
from workers.acme.config import DomainConfig, domain_config
from workers.acme.renewal import run_domain_leader
from workers.backups.scheduler import BackupScheduler
from workers.health.observer import HealthObserver, ObserverConfig
from workers.runtime.config import WorkerConfig
from workers.runtime.consumer import ConsumerSpec, Deferred, consume
from workers.sagas import (
    backup,
    backup_delete,
    control,
    mcp_credentials,
    provisioning,
    redeploy,
    restore,
    rotate_admin,
    teardown,
    validation,
)
from workers.sagas.deps import SagaConfig, SagaDeps, Trigger, decode_trigger, trigger_ids
from workers.sagas.domain_sagas import domain_sagas
from workers.ssh.control_plane_addresses import server_network_policy
from workers.ssh.runner import SshRunner

log = logging.getLogger(__name__)

Handler = Callable[[SagaDeps, Trigger], Awaitable[None]]
Exhausted = Callable[[SagaDeps, Trigger, BaseException], Awaitable[None]]


class Saga(NamedTuple):
    trigger: str  # the event type
    stream_type: str
    handle: Handler
    exhausted: Exhausted


SAGAS: Final = (
    Saga("ServerRegistered", "server", validation.handle, validation.exhausted),
    Saga("ServerValidationRequested", "server", validation.handle, validation.exhausted),
    Saga("ProvisioningRequested", "instance", provisioning.handle, provisioning.exhausted),
    Saga("ActionRequested", "instance", control.handle, control.exhausted),
    Saga("RemovalRequested", "instance", teardown.handle, teardown.exhausted),
    Saga("RedeployRequested", "instance", redeploy.handle, redeploy.exhausted),
    Saga("AdminPasswordRotationRequested", "instance", rotate_admin.handle, rotate_admin.exhausted),
    Saga("McpCredentialsRequested", "instance", mcp_credentials.handle, mcp_credentials.exhausted),
    Saga("BackupRequested", "backup", backup.handle, backup.exhausted),
    Saga("RestoreRequested", "backup", restore.handle, restore.exhausted),
    Saga("BackupDeletionRequested", "backup", backup_delete.handle, backup_delete.exhausted),
)


def worker_name(settings: WorkerConfig) -> str:
    return settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"


async def run_workers(
    settings: WorkerConfig,
    pool: Pool,
    stop: asyncio.Event,
    *,
    root: str = SagaConfig().root,
    ack_wait: float = 30.0,
    concurrency: int = 4,
    max_deliver: int = 5,
    retry_delay: float = 2.0,
    config: SagaConfig | None = None,
    sagas: Collection[str] | None = None,
    runner: SshRunner | None = None,
    shutdown_grace: float = 10.0,
    observe_health: bool = True,
    domains: DomainConfig | None = None,
) -> None:
    """Run the saga consumers, and the health observer unless `observe_health` is False,
    until `stop` is set.

    `concurrency` operations of each kind at once in this process; `sagas` limits the
    trigger event types served (all by default); `config` overrides the saga timings, its
    root always being `root`. Operations still running `shutdown_grace` seconds after `stop`
    are abandoned mid-step: their messages come back to another worker, which resumes them.
    """
    name = worker_name(settings)
    runner = runner or SshRunner(
        output_limit=settings.ssh_output_limit,
        policy=server_network_policy(
            allowed=settings.server_allowed_networks,
            denied=settings.server_denied_networks,
            database_url=settings.database_url,
            nats_url=settings.nats_url,
        ),
    )
    deps = SagaDeps(
        store=EventStore(pool),
        vault=Vault(pool, settings.secret_key),
        runner=runner,
        conninfo=settings.database_url,
        worker=name,
        config=_with_root(config or SagaConfig(), root),
    )
    nc = await connect_nats(settings.nats_url, f"odoofleet-worker-{name}", stop)
    try:
        js = nc.jetstream()
        await _ensure_stream(js, settings, stop)
        busy = _Busy()
        shares = _OrgShares(settings.worker_org_concurrency)
        domain = domains or domain_config(settings)
        served = (*SAGAS, *(Saga(*fields) for fields in domain_sagas(domain)))
        specs = [
            _consumer(deps, settings, saga, busy, shares, ack_wait, max_deliver, retry_delay)
            for saga in served
            if sagas is None or saga.trigger in sagas
        ]
        loops = [
            asyncio.create_task(consume(js, settings.nats_stream, spec, stop), name=spec.durable)
            for spec in specs
            for _ in range(max(1, concurrency))
        ]
        if sagas is None or "CertificateRequested" in sagas:
            leader = run_domain_leader(pool, deps.store, settings.database_url, domain, name, stop)
            loops.append(asyncio.create_task(leader))
        if sagas is None or "BackupRequested" in sagas:
            scheduler = BackupScheduler(pool, deps.store, deps.vault, worker=name)
            loops.append(asyncio.create_task(scheduler.run(stop, settings.database_url)))
        if observe_health:
            observer = _observer(deps, pool, settings)
            loops.append(asyncio.create_task(observer.run(stop, settings.database_url)))
        log.info("worker %s serving %s", name, ", ".join(spec.durable for spec in specs))
        await _serve(loops, stop, shutdown_grace, busy)
    finally:
        await runner.close()
        await nc.close()


async def _serve(
    loops: list[asyncio.Task[None]], stop: asyncio.Event, grace: float, busy: _Busy
) -> None:
    stopping = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({*loops, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopping}:
            task.result()  # a consumer loop only ends early by crashing: surface why
        await asyncio.wait(loops, timeout=grace)
        if busy.count:
            log.warning("abandoned %d operations mid-step; other workers resume them", busy.count)
    finally:
        stopping.cancel()
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


class _Busy:
    """How many messages this process is handling (what a shutdown abandons)."""

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


class _OrgShares:
    """How many operations of each kind every organization runs in this process. One that
    has its share (`per_org`) gets its next message deferred, so the others' messages are
    fetched meanwhile: 24 hanging servers of one tenant no longer hold every fetch loop
    (issue 13)."""

    def __init__(self, per_org: int) -> None:
        self._per_org = per_org
        self._running: dict[tuple[str, str], int] = {}

    @contextlib.contextmanager
    def share(self, kind: str, org_id: str) -> Iterator[None]:
        key = (kind, org_id)
        if self._running.get(key, 0) >= self._per_org:
            raise Deferred(f"organization {org_id} runs {self._per_org} {kind} operations here")
        self._running[key] = self._running.get(key, 0) + 1
        try:
            yield
        finally:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]


def _observer(deps: SagaDeps, pool: Pool, settings: WorkerConfig) -> HealthObserver:
    config = ObserverConfig(
        interval=settings.health_interval,
        heartbeat=settings.health_heartbeat,
        connect_timeout=deps.config.connect_timeout,
    )
    return HealthObserver(
        pool, deps.store, deps.vault, deps.runner, worker=deps.worker, config=config
    )


def _with_root(config: SagaConfig, root: str) -> SagaConfig:
    return msgspec.structs.replace(config, root=root)


def _consumer(
    deps: SagaDeps,
    settings: WorkerConfig,
    saga: Saga,
    busy: _Busy,
    shares: _OrgShares,
    ack_wait: float,
    max_deliver: int,
    retry_delay: float,
) -> ConsumerSpec:
    async def handle(wire: WireEvent) -> None:
        trigger = decode_trigger(deps, wire)
        # Both validation triggers share one kind: the saga's module.
        kind = saga.handle.__module__.rsplit(".", 1)[-1]
        with (
            shares.share(kind, trigger.origin.org_id),
            busy.handling(),
            log_context(**trigger_ids(trigger)),
        ):
            await saga.handle(deps, trigger)

    async def exhausted(wire: WireEvent, error: BaseException) -> None:
        trigger = decode_trigger(deps, wire)
        with log_context(**trigger_ids(trigger)):
            await saga.exhausted(deps, trigger, error)

    return ConsumerSpec(
        f"saga-{saga.trigger}",
        f"{settings.subject_prefix}.events.*.{saga.stream_type}.{saga.trigger}",
        handle,
        exhausted,
        ack_wait=ack_wait,
        max_deliver=max_deliver,
        retry_delay=retry_delay,
        # PoolTimeout is one too. Recording "gave up" once PostgreSQL is back would fail an
        # operation that only waited for our database.
        transient=(psycopg.OperationalError,),
    )


async def _ensure_stream(
    js: nats.js.JetStreamContext, settings: WorkerConfig, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await ensure_stream(js, settings.nats_stream, settings.subject_prefix)
            return
        except (nats.errors.Error, TimeoutError, OSError) as e:
            log.warning("JetStream stream %s not ready (%s); retrying", settings.nats_stream, e)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
