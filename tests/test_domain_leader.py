"""The workers' domain leader on a real database: what is due is sent once, however many
leaders run a round at once; what is not due (a rate-limited order still pausing, a
certificate far from expiry) is not; and the read model says `expired` once the date passed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from builders import meta
from projection_fixtures import catch_up, create_instance

from commands.domain import (
    AddDomain,
    RecordCertificate,
    RecordCertificateFailed,
    RecordVerificationFailed,
    RecordVerified,
)
from commands.domain_requests import add_domain, domain_command
from events.domain import (
    CertificateRequested,
    DomainAdded,
    DomainNameReleased,
    DomainVerificationRequested,
    domain_name_stream,
    domain_stream,
)
from events.instance import InstanceRemoved, RemovalRequested, instance_stream
from events.pool import Pool
from events.secrets import Sealed
from events.store import ANY, EventStore
from projections.domains import list_domains
from workers.acme.config import DomainConfig
from workers.acme.renewal import due_round

NOW = datetime.now(UTC)
CONFIG = DomainConfig(renew_before_days=30)


async def instance(store: EventStore) -> str:
    """An instance stream as the API leaves it (only its existence matters here)."""
    instance_id, _ = await create_instance(store)
    return str(instance_id)


async def domain(
    store: EventStore, instance_id: str, added_at: datetime = NOW - timedelta(days=80)
) -> tuple[str, str]:
    domain_id, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    command = AddDomain(
        domain_id=domain_id,
        instance_id=instance_id,
        domain=f"d-{domain_id[:8]}.example.com",
        request_id=request_id,
    )
    await add_domain(store, command, added_at, meta())
    return domain_id, request_id


async def with_certificate(store: EventStore, instance_id: str, expires_at: datetime) -> str:
    domain_id, request_id = await domain(store, instance_id)
    verified = RecordVerified(
        request_id=request_id, addresses=["203.0.113.7"], certificate_request_id="c1"
    )
    await domain_command(store, domain_id, verified, NOW, meta())
    issued = RecordCertificate(
        request_id="c1",
        certificate=Sealed("v1:x"),
        private_key=Sealed("v1:y"),
        expires_at=expires_at,
    )
    await domain_command(store, domain_id, issued, NOW, meta())
    return domain_id


async def types(store: EventStore, domain_id: str) -> list[str]:
    return [e.event_type for e in await store.read_stream(domain_stream(domain_id))]


async def test_a_certificate_expiring_within_30_days_is_renewed_once_by_racing_leaders(
    pool: Pool, store: EventStore
) -> None:
    instance_id = await instance(store)
    due = await with_certificate(store, instance_id, NOW + timedelta(days=20))
    fresh = await with_certificate(store, instance_id, NOW + timedelta(days=80))
    await catch_up(pool, "domains")

    sent = await asyncio.gather(
        *(due_round(pool, store, CONFIG, f"leader-{n}", NOW) for n in range(3))
    )

    assert sum(sent) >= 1
    assert (await types(store, due)).count("CertificateRequested") == 2  # first order, renewal
    assert (await types(store, fresh)).count("CertificateRequested") == 1
    renewal = (await store.load_stream(domain_stream(due))).events[-1]
    assert isinstance(renewal, CertificateRequested)
    assert renewal.renewal


async def test_a_rate_limited_order_is_not_sent_again_until_its_pause_is_over(
    pool: Pool, store: EventStore
) -> None:
    instance_id = await instance(store)
    domain_id = await with_certificate(store, instance_id, NOW + timedelta(days=10))
    await catch_up(pool, "domains")
    await due_round(pool, store, CONFIG, "leader", NOW)
    renewal = (await store.load_stream(domain_stream(domain_id))).events[-1]
    assert isinstance(renewal, CertificateRequested)
    failed = RecordCertificateFailed(
        request_id=renewal.request_id, reason="rateLimited: too many", rate_limited=True
    )
    await domain_command(store, domain_id, failed, NOW, meta())
    await catch_up(pool, "domains")

    soon = await due_round(pool, store, CONFIG, "leader", NOW + timedelta(minutes=30))
    later = await due_round(pool, store, CONFIG, "leader", NOW + timedelta(hours=7))

    assert (soon, later) == (0, 1)
    [listed] = await list_domains(pool, "org-a", instance_id)
    assert (listed.ssl_status(NOW), listed.ssl_message) == ("error", "rateLimited: too many")


async def test_the_ssl_status_says_error_after_a_failed_renewal_then_expired(
    pool: Pool, store: EventStore
) -> None:
    instance_id = await instance(store)
    expires = NOW + timedelta(days=10)
    domain_id = await with_certificate(store, instance_id, expires)
    await catch_up(pool, "domains")
    await due_round(pool, store, CONFIG, "leader", NOW)
    renewal = (await store.load_stream(domain_stream(domain_id))).events[-1]
    assert isinstance(renewal, CertificateRequested)
    failed = RecordCertificateFailed(
        request_id=renewal.request_id, reason="the CA is down", rate_limited=False
    )
    await domain_command(store, domain_id, failed, NOW, meta())
    await catch_up(pool, "domains")

    [listed] = await list_domains(pool, "org-a", instance_id)

    assert (listed.ssl_status(NOW), listed.ssl_message) == ("error", "the CA is down")
    assert listed.ssl_status(expires + timedelta(seconds=1)) == "expired"


async def test_a_failed_dns_check_is_checked_again_when_due_once(
    pool: Pool, store: EventStore
) -> None:
    instance_id = await instance(store)
    domain_id, request_id = await domain(store, instance_id, added_at=NOW)
    failed = RecordVerificationFailed(request_id=request_id, message="no A record")
    await domain_command(store, domain_id, failed, NOW, meta())
    await catch_up(pool, "domains")

    early = await due_round(pool, store, CONFIG, "leader", NOW + timedelta(seconds=30))
    sent = await asyncio.gather(
        *(due_round(pool, store, CONFIG, "l", NOW + timedelta(seconds=61)) for _ in range(2))
    )

    assert (early, sum(sent) >= 1) == (0, True)
    assert (await types(store, domain_id)).count("DomainVerificationRequested") == 2
    check = (await store.load_stream(domain_stream(domain_id))).events[-1]
    assert isinstance(check, DomainVerificationRequested)
    assert check.attempt == 2
    [listed] = await list_domains(pool, "org-a", instance_id)
    assert (listed.dns_status, listed.dns_message) == ("failed", "no A record")


async def test_dns_checks_stop_24_hours_after_the_first(pool: Pool, store: EventStore) -> None:
    instance_id = await instance(store)
    domain_id, request_id = await domain(store, instance_id, added_at=NOW - timedelta(hours=24))
    failed = RecordVerificationFailed(request_id=request_id, message="no A record")
    await domain_command(store, domain_id, failed, NOW, meta())
    await catch_up(pool, "domains")

    assert await due_round(pool, store, CONFIG, "leader", NOW + timedelta(days=2)) == 0
    [listed] = await list_domains(pool, "org-a", instance_id)
    assert (listed.dns_status, listed.dns_retry_at) == ("failed", None)


async def test_the_domains_of_a_removed_instance_are_removed_and_their_names_freed(
    pool: Pool, store: EventStore
) -> None:
    removed, kept = await instance(store), await instance(store)
    gone, _ = await domain(store, removed)
    stays, _ = await domain(store, kept)
    await store.append(
        instance_stream(removed),
        ANY,
        [
            RemovalRequested(instance_id=removed, operation_id="t1"),
            InstanceRemoved(instance_id=removed, operation_id="t1"),
        ],
        meta(),
    )
    await catch_up(pool, "instances", "domains")

    await due_round(pool, store, CONFIG, "leader", NOW)

    assert (await types(store, gone))[-1] == "DomainRemoved"
    assert "DomainRemoved" not in await types(store, stays)
    name = (await store.load_stream(domain_stream(gone))).events[0]
    assert isinstance(name, DomainAdded)
    held = await store.load_stream(domain_name_stream(name.domain))
    assert isinstance(held.events[-1], DomainNameReleased)
