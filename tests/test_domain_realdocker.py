"""Custom domains end to end on the real-Docker tier: a domain whose DNS (the test DNS server)
points at the server is verified, Pebble issues its certificate through HTTP-01 served by the
server's real nginx proxy, the instance answers over HTTPS with that chain (HTTP redirects),
a renewal replaces it without a failed request, and a removal takes route and certificate
off the server. A domain pointing elsewhere fails with the resolver's answer. The instance's
auto subdomain, recorded once it is provisioned, gets its certificate the same way (HTTP-01
through the instance's own route) and answers HTTPS with Pebble's chain."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
import pytest_asyncio
from cryptography import x509
from dns_server import DnsServer, dns_server
from pebble_fixtures import Pebble, running_pebble
from projection_fixtures import catch_up
from realdocker_fixtures import (  # noqa: F401
    DockerFleet,
    DockerSshd,
    docker_engine_fixture,
    docker_server_fixture,
)
from realdocker_probes import PROXY_PORT, get
from saga_fixtures import ORG, Instance, meta
from test_realdocker_sagas import outcome, provision, validated_server

from commands.domain import AddDomain
from commands.domain_auto import auto_domain_id
from commands.domain_requests import add_domain, remove_domain
from events.domain import (
    CertificateFailed,
    CertificateIssued,
    CertificateRenewed,
    DomainVerificationFailed,
    DomainVerified,
    domain_stream,
)
from events.instance import ActionFailed, InstanceRedeployed
from events.operation import OperationStepCompleted
from events.pool import Pool
from events.registry import EventRegistry
from odoofleet.embedded import free_port
from odoofleet.settings import Settings
from workers.acme.config import DomainConfig
from workers.acme.renewal import due_round
from workers.ssh.network_policy import LOOPBACK_NETWORKS

pytestmark = pytest.mark.realdocker
__all__ = ["dns_server"]


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer) -> Iterator[Pebble]:
    # Pebble validates HTTP-01 on the port the servers' proxies answer on.
    with running_pebble(tmp_path_factory.mktemp("pebble"), dns_server, PROXY_PORT) as p:
        yield p


@pytest.fixture
def domains(pebble: Pebble, dns_server: DnsServer) -> DomainConfig:
    return DomainConfig(
        acme=pebble.acme_config(),
        resolvers=(dns_server.address,),
        https_port=free_port(),
        check_interval=3600.0,  # the test drives the leader's rounds itself
    )


@pytest_asyncio.fixture
async def fleet(
    settings: Settings,
    pool: Pool,
    registry: EventRegistry,
    docker_server: DockerSshd,
    domains: DomainConfig,
) -> AsyncIterator[DockerFleet]:
    loopback = msgspec.structs.replace(settings, server_allowed_networks=LOOPBACK_NETWORKS)
    fleet = DockerFleet(loopback, pool, registry, docker_server)
    fleet.start_relay()
    fleet.start_workers(domains=domains)
    try:
        yield fleet
    finally:
        await fleet.stop()


@pytest_asyncio.fixture
async def auto_fleet(
    settings: Settings,
    pool: Pool,
    registry: EventRegistry,
    docker_server: DockerSshd,
    domains: DomainConfig,
) -> AsyncIterator[DockerFleet]:
    """Workers that record each provisioned instance's auto subdomain (the default outside
    the tests)."""
    loopback = msgspec.structs.replace(settings, server_allowed_networks=LOOPBACK_NETWORKS)
    fleet = DockerFleet(loopback, pool, registry, docker_server)
    fleet.start_relay()
    fleet.start_workers(domains=msgspec.structs.replace(domains, auto_domains=True))
    try:
        yield fleet
    finally:
        await fleet.stop()


def https_get(domain: str, port: int, root: bytes, path: str = "/web/health") -> tuple[int, bytes]:
    """GET over TLS to 127.0.0.1:`port` with SNI `domain`, trusting only Pebble's root;
    the status and the certificate the server presented (DER)."""
    context = ssl.create_default_context(cadata=root.decode())
    request = f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n"
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=domain) as tls,
    ):
        presented = tls.getpeercert(binary_form=True) or b""
        tls.sendall(request.encode())
        answer = tls.recv(4096).decode(errors="replace")
    return int(answer.split(" ", 2)[1]), presented


class TlsPoller:
    """HTTPS GETs in a thread of its own; every answer but a 200 is a failure."""

    def __init__(self, domain: str, port: int, root: bytes) -> None:
        self.domain, self.port, self.root = domain, port, root
        self.polls = 0
        self.failures: list[str] = []
        self.presented: set[bytes] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TlsPoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.polls += 1
            try:
                status, presented = https_get(self.domain, self.port, self.root)
                self.presented.add(presented)
                if status != 200:
                    self.failures.append(f"HTTP {status}")
            except (OSError, ssl.SSLError) as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            self._stop.wait(0.05)


async def added(fleet: DockerFleet, instance: Instance, domain: str) -> str:
    domain_id = str(uuid.uuid4())
    command = AddDomain(
        domain_id=domain_id, instance_id=instance.id, domain=domain, request_id=str(uuid.uuid4())
    )
    await add_domain(fleet.store, command, datetime.now(UTC), meta(ORG))
    return domain_id


def served_certificate(fullchain_der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(fullchain_der)


async def test_a_domain_gets_https_with_a_certificate_that_is_renewed_then_removed(
    fleet: DockerFleet,
    dns_server: DnsServer,
    pebble: Pebble,
    domains: DomainConfig,
    docker_server: DockerSshd,
    pool: Pool,
) -> None:
    server_id = await validated_server(fleet)
    instance, _ = await provision(fleet, server_id, "shop")
    domain = f"shop-{uuid.uuid4().hex[:6]}.example.test"
    elsewhere = f"other-{uuid.uuid4().hex[:6]}.example.test"
    dns_server.point(domain, "127.0.0.1")
    dns_server.point(elsewhere, "192.0.2.10")
    root = pebble.root_pem()

    domain_id = await added(fleet, instance, domain)
    other_id = await added(fleet, instance, elsewhere)
    verified = await fleet.wait_for(
        domain_stream(domain_id), DomainVerified, DomainVerificationFailed, timeout=60
    )
    refused = await fleet.wait_for(
        domain_stream(other_id), DomainVerified, DomainVerificationFailed, timeout=60
    )
    issued = await fleet.wait_for(
        domain_stream(domain_id), CertificateIssued, CertificateFailed, timeout=120
    )

    assert isinstance(verified, DomainVerified), verified
    assert verified.addresses == ["127.0.0.1"]
    assert isinstance(refused, DomainVerificationFailed), refused
    assert "192.0.2.10" in refused.message
    assert "127.0.0.1" in refused.message
    assert isinstance(issued, CertificateIssued), (issued, pebble.logs())
    chain = await fleet.vault.open(domain_stream(domain_id), issued.certificate)
    first = x509.load_pem_x509_certificates(chain.encode())[0]
    status, presented = await asyncio.to_thread(https_get, domain, domains.https_port, root)
    assert status == 200
    assert served_certificate(presented) == first
    tls_dir = Path(docker_server.root) / "_proxy" / "routes" / "tls"
    assert (tls_dir / f"{domain}.key").stat().st_mode & 0o777 == 0o600
    redirect, _ = await asyncio.to_thread(get, domain, "/web/login")
    assert redirect == 301
    assert (await asyncio.to_thread(get, instance.slug + ".odoo.localhost"))[0] == 200
    route = Path(docker_server.root) / "_proxy" / "routes" / f"_domain.shop.{domain}.conf"
    assert "set $odoo_upstream shop-blue-odoo-1;" in route.read_text()

    # A redeploy switches the domain with the instance: HTTPS never fails while the old
    # colour is stopped right after the switch.
    with TlsPoller(domain, domains.https_port, root) as during:
        operation = await fleet.redeploy(instance, "green")
        switched = await outcome(fleet, instance, operation, InstanceRedeployed, ActionFailed)
    assert isinstance(switched, InstanceRedeployed), switched
    assert "set $odoo_upstream shop-green-odoo-1;" in route.read_text()
    assert during.polls > 10
    # `nginx -s reload` returns before the master has started its new workers: the switch
    # waits until the previous workers have exited before the old colour is stopped, so no
    # request reaches a stopped colour.
    assert during.failures == [], during.failures
    switch = [
        e.output
        for e in await fleet.operation(operation)
        if isinstance(e, OperationStepCompleted) and e.step == "route-green"
    ]
    assert "the previous nginx workers have exited" in switch[0], switch
    assert (await asyncio.to_thread(https_get, domain, domains.https_port, root))[0] == 200

    # Renewal: the leader finds the certificate due (as if 30 days were left) and orders one;
    # HTTPS keeps answering while the new certificate replaces the old.
    due = msgspec.structs.replace(domains, renew_before_days=365 * 10)
    with TlsPoller(domain, domains.https_port, root) as poller:
        await catch_up(pool, "domains")
        assert await due_round(pool, fleet.store, due, "test-leader", datetime.now(UTC)) == 1
        renewed = await fleet.wait_for(
            domain_stream(domain_id), CertificateRenewed, CertificateFailed, timeout=120
        )
        assert isinstance(renewed, CertificateRenewed), renewed
        new_chain = await fleet.vault.open(domain_stream(domain_id), renewed.certificate)
        new = x509.load_pem_x509_certificates(new_chain.encode())[0]
        deadline = time.monotonic() + 10
        while True:
            _, presented = await asyncio.to_thread(https_get, domain, domains.https_port, root)
            if served_certificate(presented) == new:
                break
            assert time.monotonic() < deadline, "the renewed certificate is not served"
            await asyncio.sleep(0.1)
    assert poller.polls > 10
    assert poller.failures == [], "renewal"
    assert new.serial_number != first.serial_number

    # Removal: the route and the certificate leave the server; other routes stay.
    await remove_domain(fleet.store, domain_id, instance.id, datetime.now(UTC), meta(ORG))

    async def gone() -> bool:
        return not route.exists() and not (tls_dir / f"{domain}.pem").exists()

    deadline = time.monotonic() + 60
    while not await gone():
        assert time.monotonic() < deadline, "the domain's files are still on the server"
        await asyncio.sleep(0.1)
    assert not (tls_dir / f"{domain}.key").exists()
    assert (await asyncio.to_thread(get, instance.slug + ".odoo.localhost"))[0] == 200
    # `nginx -s reload` only signals the master: the old workers may answer a moment longer.
    deadline = time.monotonic() + 10
    while True:
        try:
            await asyncio.to_thread(https_get, domain, domains.https_port, root)
        except (OSError, ssl.SSLError):
            break
        assert time.monotonic() < deadline, "the removed domain is still served over HTTPS"
        await asyncio.sleep(0.1)


async def test_the_auto_subdomain_answers_https_with_pebbles_chain(
    auto_fleet: DockerFleet,
    dns_server: DnsServer,
    pebble: Pebble,
    domains: DomainConfig,
    docker_server: DockerSshd,
) -> None:
    server_id = await validated_server(auto_fleet)
    auto = "cafe.odoo.localhost"
    dns_server.point(auto, "127.0.0.1")  # Pebble asks the test DNS server
    instance, _ = await provision(auto_fleet, server_id, "cafe")
    stream = domain_stream(auto_domain_id(instance.id, auto))

    verified = await auto_fleet.wait_for(stream, DomainVerified, DomainVerificationFailed)
    issued = await auto_fleet.wait_for(stream, CertificateIssued, CertificateFailed, timeout=120)

    assert isinstance(verified, DomainVerified), verified
    assert isinstance(issued, CertificateIssued), (issued, pebble.logs())
    chain = await auto_fleet.vault.open(stream, issued.certificate)
    leaf = x509.load_pem_x509_certificates(chain.encode())[0]
    status, presented = await asyncio.to_thread(
        https_get, auto, domains.https_port, pebble.root_pem()
    )
    assert status == 200
    assert served_certificate(presented) == leaf
    # Plain HTTP is still the instance's own route: answered, not redirected.
    assert (await asyncio.to_thread(get, auto))[0] == 200
    route = Path(docker_server.root) / "_proxy" / "routes" / f"_domain.cafe.{auto}.conf"
    assert "set $odoo_upstream cafe-blue-odoo-1;" in route.read_text()
