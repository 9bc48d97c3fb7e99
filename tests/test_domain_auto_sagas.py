"""The auto subdomain through the sagas on the stand-in tier (real sshd, the sandbox's stand-in
docker) with a real ACME CA (Pebble) and the test DNS server: recorded once its instance is
provisioned (or, for an instance from before, by the domain leader's round), checked in DNS,
its certificate ordered with HTTP-01 and installed with an HTTPS-only route beside the
instance's own. The stand-in runs no nginx, so a file server over the proxy's challenge
directory answers Pebble where the instance's route would. A server the name does not point
at: the check fails with the resolver's answer and nothing is ordered."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from cryptography import x509
from dns_server import DnsServer, dns_server
from pebble_fixtures import Pebble, running_pebble
from projection_fixtures import catch_up
from saga_fixtures import ORG, Fleet, Instance, kill_hung_standins, meta
from sshd_harness import SshdServer

from commands.domain_auto import auto_domain_id
from events.domain import (
    CertificateFailed,
    CertificateIssued,
    CertificateRequested,
    DomainAdded,
    DomainVerificationFailed,
    DomainVerified,
    domain_stream,
)
from events.instance import InstanceProvisioned, ProvisioningFailed
from events.operation import OperationStepCompleted, OperationSucceeded, operation_stream
from events.pool import Pool
from events.registry import EventRegistry
from events.server import (
    ServerRegistered,
    ServerValidated,
    ServerValidationRequested,
    server_stream,
)
from events.store import NO_STREAM
from odoofleet.embedded import free_port
from odoofleet.settings import Settings
from workers.acme.config import DomainConfig
from workers.acme.renewal import due_round
from workers.sagas.domain_operations import domain_operation_id

__all__ = ["dns_server"]
SLUG = "acme"
AUTO = f"{SLUG}.odoo.localhost"  # what saga_fixtures' instances are given


class ChallengeDirectory:
    """Serves `/.well-known/acme-challenge/<token>` from the directory the certificate saga
    writes over SFTP (`<proxy routes>/acme`), as the instance's nginx route does."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.port = free_port()
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                root = served.root
                file = None if root is None else root / self.path.lstrip("/")
                found = file is not None and ".." not in self.path and file.is_file()
                self.send_response(200 if found else 404)
                self.end_headers()
                if found and file is not None:
                    self.wfile.write(file.read_bytes())

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def challenges() -> Iterator[ChallengeDirectory]:
    directory = ChallengeDirectory()
    yield directory
    directory.server.shutdown()


@pytest.fixture(scope="module")
def pebble(
    tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer, challenges: ChallengeDirectory
) -> Iterator[Pebble]:
    with running_pebble(tmp_path_factory.mktemp("pebble"), dns_server, challenges.port) as p:
        yield p


def with_pebble(settings: Settings, pebble: Pebble, dns: DnsServer, *, auto: bool) -> Settings:
    acme = pebble.acme_config()
    return msgspec.structs.replace(
        settings,
        acme_directory_url=acme.directory_url,
        acme_email=acme.email,
        acme_ca_bundle=acme.ca_bundle,
        dns_resolvers=dns.address,
        auto_domain_tls=auto,
        domain_check_interval=3600.0,  # the leader's later rounds are the test's
    )


async def started(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
) -> Fleet:
    fleet = Fleet(settings, pool, registry, sshd)
    fleet.start_relay()
    fleet.start_workers()
    return fleet


@pytest_asyncio.fixture
async def fleet(
    settings: Settings,
    pool: Pool,
    registry: EventRegistry,
    sshd: SshdServer,
    pebble: Pebble,
    dns_server: DnsServer,
    challenges: ChallengeDirectory,
) -> AsyncIterator[Fleet]:
    challenges.root = Path(sshd.root) / "_proxy" / "routes" / "acme"
    dns_server.point(AUTO, "127.0.0.1")  # where Pebble looks the name up
    running = await started(
        with_pebble(settings, pebble, dns_server, auto=True), pool, registry, sshd
    )
    try:
        yield running
    finally:
        await running.stop()
        kill_hung_standins(sshd)


@pytest_asyncio.fixture
async def fleet_from_before(
    settings: Settings,
    pool: Pool,
    registry: EventRegistry,
    sshd: SshdServer,
    pebble: Pebble,
    dns_server: DnsServer,
    challenges: ChallengeDirectory,
) -> AsyncIterator[Fleet]:
    """Workers that do not record auto subdomains on provisioning (as before this change)."""
    challenges.root = Path(sshd.root) / "_proxy" / "routes" / "acme"
    dns_server.point(AUTO, "127.0.0.1")
    running = await started(
        with_pebble(settings, pebble, dns_server, auto=False), pool, registry, sshd
    )
    try:
        yield running
    finally:
        await running.stop()
        kill_hung_standins(sshd)


async def provisioned(fleet: Fleet, server_id: str) -> Instance:
    await fleet.wait_for(server_stream(server_id), ServerValidated)
    instance = await fleet.create_instance(server_id, slug=SLUG)
    done = await fleet.wait_for(instance.stream, InstanceProvisioned, ProvisioningFailed)
    assert isinstance(done, InstanceProvisioned), done
    return instance


async def steps_of(fleet: Fleet, request_id: str) -> list[tuple[str, str]]:
    stream = operation_stream(domain_operation_id("issue-certificate", request_id))
    ended = await fleet.wait_for(stream, OperationSucceeded)
    assert isinstance(ended, OperationSucceeded), ended
    return [
        (e.step, e.output)
        for e in await fleet.events(stream)
        if isinstance(e, OperationStepCompleted)
    ]


async def test_a_provisioned_instance_gets_its_auto_subdomain_certified(
    fleet: Fleet, sshd: SshdServer
) -> None:
    instance = await provisioned(fleet, await fleet.register_server())
    stream = domain_stream(auto_domain_id(instance.id, AUTO))

    verified = await fleet.wait_for(stream, DomainVerified, DomainVerificationFailed, timeout=60)
    issued = await fleet.wait_for(stream, CertificateIssued, CertificateFailed, timeout=120)

    added = (await fleet.events(stream))[0]
    assert isinstance(added, DomainAdded), added
    assert added.auto_generated
    assert added.domain == AUTO
    assert isinstance(verified, DomainVerified), verified
    assert isinstance(issued, CertificateIssued), issued
    chain = await fleet.vault.open(stream, issued.certificate)
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [AUTO]
    assert leaf.issuer != leaf.subject  # Pebble's chain, not the sandbox's stand-in
    routes = Path(sshd.root) / "_proxy" / "routes"
    route = (routes / f"_domain.{SLUG}.{AUTO}.conf").read_text()
    assert "listen 443 ssl;" in route
    # Plain HTTP stays the instance's own route's (no second port-80 block for the name).
    assert "return 301" not in route
    assert "listen 80;" not in route
    assert "/.well-known/acme-challenge/" in (routes / f"{SLUG}.conf").read_text()
    assert (routes / "tls" / f"{AUTO}.key").stat().st_mode & 0o777 == 0o600
    steps = await steps_of(fleet, issued.request_id)
    assert [step for step, _ in steps] == [
        "serve-challenges",
        "order-certificate",
        "install-certificate",
    ]
    assert "already" in steps[0][1]  # a route rendered now serves the challenges


async def test_an_instance_from_before_gets_its_auto_subdomain_on_the_leaders_next_round(
    fleet_from_before: Fleet, sshd: SshdServer, pool: Pool
) -> None:
    fleet = fleet_from_before
    instance = await provisioned(fleet, await fleet.register_server())
    stream = domain_stream(auto_domain_id(instance.id, AUTO))
    routes = Path(sshd.root) / "_proxy" / "routes"
    own = routes / f"{SLUG}.conf"
    # The route as provisioning rendered it before it served ACME's challenges.
    old = own.read_text().replace("location ^~ /.well-known/acme-challenge/", "location ^~ /x/")
    own.write_text(old)
    assert await fleet.events(stream) == []

    await catch_up(pool, "instances")
    auto = DomainConfig(auto_domains=True, check_interval=3600.0)
    recorded = await due_round(pool, fleet.store, auto, "test-leader", datetime.now(UTC))
    issued = await fleet.wait_for(stream, CertificateIssued, CertificateFailed, timeout=120)

    assert recorded == 1
    assert isinstance(issued, CertificateIssued), issued
    steps = dict(await steps_of(fleet, issued.request_id))
    assert "already" not in steps["serve-challenges"]
    assert "/.well-known/acme-challenge/" in own.read_text()
    assert f"set $odoo_upstream {SLUG}-blue-odoo-1;" in own.read_text()


async def test_an_auto_subdomain_not_pointing_at_the_server_fails_with_the_answer(
    fleet: Fleet,
) -> None:
    server_id = str(uuid.uuid4())
    server = server_stream(server_id)
    registered = ServerRegistered(
        server_id=server_id,
        name=f"test-{server_id[:8]}",
        host="127.0.0.1",
        port=fleet.sshd.port,
        ssh_user="root",
        auth_method="key",
        ssh_private_key=await fleet.vault.seal(server, fleet.sshd.client_private_key),
        ssh_password=None,
        host_key=fleet.sshd.host_key_line,
        max_ssh_sessions=4,
        public_ipv4="203.0.113.7",  # the operator's word: not where the name points
        created_at=datetime.now(UTC),
    )
    validate = ServerValidationRequested(server_id=server_id, operation_id=str(uuid.uuid4()))
    await fleet.store.append(server, NO_STREAM, [registered, validate], meta(ORG))
    instance = await provisioned(fleet, server_id)
    stream = domain_stream(auto_domain_id(instance.id, AUTO))

    failed = await fleet.wait_for(stream, DomainVerified, DomainVerificationFailed, timeout=60)

    assert isinstance(failed, DomainVerificationFailed), failed
    assert failed.message == f"{AUTO} resolves to 127.0.0.1; expected 203.0.113.7"
    assert failed.retry_at is not None  # checked again with backoff
    assert not any(isinstance(e, CertificateRequested) for e in await fleet.events(stream))
