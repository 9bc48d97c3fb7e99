"""The domain sagas on the stand-in tier (real sshd, the sandbox's stand-in docker): what
`odoofleet dev --sandbox-server` shows. A `*.localhost` domain points at the sandbox server
(RFC 6761), gets a self-signed certificate and its HTTPS route; removal takes them away. A
CA that is down is a recorded CertificateFailed with the reason, not a hang."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest_asyncio
from cryptography import x509
from saga_fixtures import ORG, Fleet, Instance, kill_hung_standins, meta
from sshd_harness import SshdServer

from commands.domain import AddDomain
from commands.domain_auto import auto_domain_id
from commands.domain_requests import add_domain, remove_domain
from events.domain import (
    CertificateFailed,
    CertificateIssued,
    DomainVerificationFailed,
    DomainVerified,
    domain_stream,
)
from events.instance import InstanceProvisioned, ProvisioningFailed
from events.operation import (
    OperationFailed,
    OperationStarted,
    OperationStepCompleted,
    OperationSucceeded,
    operation_stream,
)
from events.pool import Pool
from events.registry import EventRegistry
from events.server import ServerValidated, server_stream
from odoofleet.embedded import free_port
from odoofleet.settings import Settings
from workers.sagas.domain_operations import domain_operation_id


async def fleet_with(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer, **changes: object
) -> Fleet:
    fleet = Fleet(msgspec.structs.replace(settings, **changes), pool, registry, sshd)
    fleet.start_relay()
    fleet.start_workers()
    return fleet


@pytest_asyncio.fixture
async def sandbox(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
) -> AsyncIterator[Fleet]:
    fleet = await fleet_with(settings, pool, registry, sshd, acme_directory_url="self-signed")
    try:
        yield fleet
    finally:
        await fleet.stop()
        kill_hung_standins(sshd)


@pytest_asyncio.fixture
async def sandbox_defaults(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
) -> AsyncIterator[Fleet]:
    """What `odoofleet dev --sandbox-server` runs: the stand-in CA and auto subdomains on
    (the default ODOOFLEET_AUTO_DOMAIN_TLS, which the tests' settings turn off)."""
    fleet = await fleet_with(
        settings, pool, registry, sshd, acme_directory_url="self-signed", auto_domain_tls=True
    )
    try:
        yield fleet
    finally:
        await fleet.stop()
        kill_hung_standins(sshd)


@pytest_asyncio.fixture
async def ca_down(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
) -> AsyncIterator[Fleet]:
    down = f"https://127.0.0.1:{free_port()}/dir"
    fleet = await fleet_with(settings, pool, registry, sshd, acme_directory_url=down)
    try:
        yield fleet
    finally:
        await fleet.stop()
        kill_hung_standins(sshd)


async def running(fleet: Fleet) -> Instance:
    server_id = await fleet.register_server()
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    instance = await fleet.create_instance(server_id)
    done = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    assert isinstance(done, InstanceProvisioned), done
    return instance


async def added(fleet: Fleet, instance: Instance, domain: str) -> str:
    domain_id = str(uuid.uuid4())
    command = AddDomain(
        domain_id=domain_id, instance_id=instance.id, domain=domain, request_id=str(uuid.uuid4())
    )
    await add_domain(fleet.store, command, datetime.now(UTC), meta(ORG))
    return domain_id


async def operation_of(
    fleet: Fleet, kind: str, request_id: str
) -> tuple[OperationStarted, list[str], OperationSucceeded | OperationFailed]:
    """The domain saga's operation (what `GET /api/instances/{id}/operations` shows): how it
    started, its completed steps, how it ended."""
    stream = operation_stream(domain_operation_id(kind, request_id))  # type: ignore[arg-type]
    ended = await fleet.wait_for(stream, OperationSucceeded, OperationFailed)
    events = await fleet.events(stream)
    started = next(e for e in events if isinstance(e, OperationStarted))
    steps = [e.step for e in events if isinstance(e, OperationStepCompleted)]
    assert isinstance(ended, OperationSucceeded | OperationFailed)
    return started, steps, ended


async def test_a_localhost_domain_gets_a_self_signed_certificate_and_its_route(
    sandbox: Fleet, sshd: SshdServer
) -> None:
    instance = await running(sandbox)
    domain = f"shop-{uuid.uuid4().hex[:6]}.localhost"

    domain_id = await added(sandbox, instance, domain)
    verified = await sandbox.wait_for(
        domain_stream(domain_id), DomainVerified, DomainVerificationFailed
    )
    issued = await sandbox.wait_for(
        domain_stream(domain_id), CertificateIssued, CertificateFailed, timeout=60
    )

    assert isinstance(verified, DomainVerified), verified
    assert isinstance(issued, CertificateIssued), issued
    pem = await sandbox.vault.open(domain_stream(domain_id), issued.certificate)
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert certificate.issuer == certificate.subject  # self-signed
    routes = Path(sshd.root) / "_proxy" / "routes"
    route = routes / f"_domain.{instance.slug}.{domain}.conf"
    assert f"server_name {domain};" in route.read_text()
    assert "listen 443 ssl;" in route.read_text()
    assert (routes / "tls" / f"{domain}.pem").read_text() == pem
    assert (routes / "tls" / f"{domain}.key").stat().st_mode & 0o777 == 0o600
    assert "Strict-Transport-Security" not in route.read_text()  # HSTS is opt-in
    check = await operation_of(sandbox, "verify-domain", verified.request_id)
    assert (check[0].type, check[0].instance_id, check[1]) == (
        "verify-domain",
        instance.id,
        ["check-dns"],
    )
    assert isinstance(check[2], OperationSucceeded)
    order = await operation_of(sandbox, "issue-certificate", issued.request_id)
    assert (order[0].type, order[0].instance_id, order[1]) == (
        "issue-certificate",
        instance.id,
        ["order-certificate", "install-certificate"],
    )
    assert isinstance(order[2], OperationSucceeded)

    await remove_domain(sandbox.store, domain_id, instance.id, datetime.now(UTC), meta(ORG))
    deadline = time.monotonic() + 30
    while route.exists() or (routes / "tls" / f"{domain}.key").exists():
        assert time.monotonic() < deadline, "the domain's files are still on the server"
        await asyncio.sleep(0.05)


async def test_a_ca_that_is_down_is_a_recorded_failure_with_the_reason(ca_down: Fleet) -> None:
    instance = await running(ca_down)
    domain = f"shop-{uuid.uuid4().hex[:6]}.localhost"

    domain_id = await added(ca_down, instance, domain)
    failed = await ca_down.wait_for(
        domain_stream(domain_id), CertificateIssued, CertificateFailed, timeout=60
    )

    assert isinstance(failed, CertificateFailed), failed
    assert "refused" in failed.reason.lower() or "connection" in failed.reason.lower()
    assert not failed.rate_limited
    assert failed.retry_at is not None
    started, steps, ended = await operation_of(ca_down, "issue-certificate", failed.request_id)
    assert (started.type, steps) == ("issue-certificate", [])
    assert isinstance(ended, OperationFailed)
    assert (ended.step, ended.error) == ("order-certificate", failed.reason)


async def test_the_sandbox_shows_the_auto_subdomain_verified_with_its_https_route(
    sandbox_defaults: Fleet, sshd: SshdServer
) -> None:
    instance = await running(sandbox_defaults)
    auto = f"{instance.slug}.odoo.localhost"
    stream = domain_stream(auto_domain_id(instance.id, auto))

    verified = await sandbox_defaults.wait_for(stream, DomainVerified, DomainVerificationFailed)
    issued = await sandbox_defaults.wait_for(
        stream, CertificateIssued, CertificateFailed, timeout=60
    )

    assert isinstance(verified, DomainVerified), verified
    assert isinstance(issued, CertificateIssued), issued
    pem = await sandbox_defaults.vault.open(stream, issued.certificate)
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert certificate.issuer == certificate.subject  # the stand-in's self-signed
    routes = Path(sshd.root) / "_proxy" / "routes"
    route = (routes / f"_domain.{instance.slug}.{auto}.conf").read_text()
    assert f"server_name {auto};" in route
    assert "listen 443 ssl;" in route
    assert (routes / "tls" / f"{auto}.pem").read_text() == pem
