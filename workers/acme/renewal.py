"""The workers' domain leader: one process at a time (a PostgreSQL advisory lock) looks, every
`check_interval`, for certificates that expire within `renew_before_days`, failed DNS checks
whose retry is due, and failed first orders whose pause is over, and sends each its command;
it removes the domains of removed instances, and (with `auto_domains`) records the auto
subdomain of every provisioned instance that has none yet (one created before auto subdomains
were domains, or whose InstanceProvisioned saga gave up).

Exactly once across processes: besides the lock, each command's event ids derive from what
made it due (the domain, and the expiry or retry time it was due for), so a leader that took
over mid-round, or a round repeated, appends nothing twice; and the decider refuses a second
order while one is running. A rate-limited order was given a retry time hours away
(commands.domain.RATE_LIMIT_PAUSE), so the CA is not asked again in a tight loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from commands.domain import DomainNotFound, RequestCertificate, VerifyDomain
from commands.domain_auto import record_auto_domain
from commands.domain_requests import domain_command, remove_domain
from commands.instance_state import Removed, fold
from commands.runner import load
from events.instance import instance_stream
from events.leader import LeaderLock
from events.metadata import EventMetadata, system_actor
from events.pool import Pool
from events.store import EventStore
from projections.domains import (
    DomainView,
    due_domains,
    instances_without_auto_domain,
    orphan_domains,
)
from workers.acme.config import DomainConfig

log = logging.getLogger(__name__)

LEADER_LOCK: Final = "odoofleet-domain-leader"
_IDS: Final = uuid.UUID("6c1f7a2e-0d3b-4b8a-a7f1-5e2c9d8b7a63")


async def run_domain_leader(
    pool: Pool,
    store: EventStore,
    conninfo: str,
    config: DomainConfig,
    worker: str,
    stop: asyncio.Event,
) -> None:
    """Lead (or stand by) until `stop` is set."""
    lock = LeaderLock(conninfo, LEADER_LOCK)
    try:
        while await lock.acquire(stop):
            while not stop.is_set() and await lock.still_held():
                try:
                    await due_round(pool, store, config, worker, datetime.now(UTC))
                except psycopg.OperationalError as e:
                    log.warning("domain leader: database unavailable (%s); retrying", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), config.check_interval)
    finally:
        await lock.release()


async def due_round(
    pool: Pool, store: EventStore, config: DomainConfig, worker: str, now: datetime
) -> int:
    """Send every command that is due at `now`; how many decided something (a command a
    racing leader sent first counts too: its derived ids make the store append nothing)."""
    renew_before = now + timedelta(days=config.renew_before_days)
    sent = await _reap(pool, store, worker, now)
    if config.auto_domains:
        sent += await _record_auto_domains(pool, store, worker, now)
    for domain in await due_domains(pool, now, renew_before):
        metadata = EventMetadata(
            actor=system_actor(worker), org_id=domain.org_id, correlation_id=str(uuid.uuid4())
        )
        for command, key in _due(domain, now, renew_before):
            try:
                outcome = await domain_command(
                    store, domain.id, command, now, metadata, idempotency_key=key
                )
            except DomainNotFound:
                continue  # removed since the read model was read
            sent += bool(outcome.events)
    return sent


async def _reap(pool: Pool, store: EventStore, worker: str, now: datetime) -> int:
    """The domains of removed instances, removed in turn (their names freed, their files taken
    off the server by the cleanup saga). The instance's own stream decides, not the read
    model, which may lag behind a new instance."""
    reaped = 0
    for domain in await orphan_domains(pool):
        instance = await load(store, instance_stream(domain.instance_id), fold)
        if not isinstance(instance.state, Removed):
            continue
        metadata = EventMetadata(
            actor=system_actor(worker), org_id=domain.org_id, correlation_id=str(uuid.uuid4())
        )
        with contextlib.suppress(DomainNotFound):
            outcome = await remove_domain(
                store, domain.id, domain.instance_id, now, metadata, instance_removed=True
            )
            reaped += bool(outcome.events)
    return reaped


async def _record_auto_domains(pool: Pool, store: EventStore, worker: str, now: datetime) -> int:
    recorded = 0
    for instance in await instances_without_auto_domain(pool):
        metadata = EventMetadata(
            actor=system_actor(worker), org_id=instance.org_id, correlation_id=str(uuid.uuid4())
        )
        outcome = await record_auto_domain(store, instance.id, now, metadata)
        recorded += bool(outcome.events)
    return recorded


def _due(
    domain: DomainView, now: datetime, renew_before: datetime
) -> list[tuple[VerifyDomain | RequestCertificate, str]]:
    due: list[tuple[VerifyDomain | RequestCertificate, str]] = []
    if domain.dns_retry_at is not None and domain.dns_retry_at <= now:
        key = f"{domain.id}/dns/{domain.dns_retry_at.isoformat()}"
        due.append((VerifyDomain(request_id=_id(key), retry=True), key))
    retry_over = domain.ssl_retry_at is None or domain.ssl_retry_at <= now
    if domain.certificate_request is None and retry_over:
        expiring = domain.ssl_expires_at is not None and domain.ssl_expires_at <= renew_before
        first_failed = domain.ssl_expires_at is None and domain.ssl_retry_at is not None
        if expiring or first_failed:
            at = domain.ssl_retry_at or domain.ssl_expires_at
            key = f"{domain.id}/certificate/{domain.ssl_expires_at}/{at}"
            due.append((RequestCertificate(request_id=_id(key)), key))
    return due


def _id(key: str) -> str:
    return str(uuid.uuid5(_IDS, key))
