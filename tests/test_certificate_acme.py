"""Ordering certificates from a real ACME CA (Pebble) with HTTP-01: the challenge files the
issuer hands over are served on the port Pebble validates, for the name the test DNS server
points at loopback; a name pointing nowhere fails with the CA's reason."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from dns_server import DnsServer, dns_server
from pebble_fixtures import Pebble, running_pebble

from odoofleet.embedded import free_port
from workers.acme.issuer import AcmeClient, AcmeConfig, AcmeFailed

__all__ = ["dns_server"]


class ChallengeFiles:
    """What a proxy's challenge directory would hold: path → content, served over HTTP."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.port = free_port()
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write((body or "").encode())

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def publish(self, challenges: list[tuple[str, str]]) -> None:
        self.files.update(challenges)


@pytest.fixture(scope="module")
def challenge_files() -> Iterator[ChallengeFiles]:
    files = ChallengeFiles()
    yield files
    files.server.shutdown()


@pytest.fixture(scope="module")
def pebble(
    tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer, challenge_files: ChallengeFiles
) -> Iterator[Pebble]:
    with running_pebble(tmp_path_factory.mktemp("pebble"), dns_server, challenge_files.port) as p:
        yield p


def name() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}.example.test"


async def test_a_certificate_is_issued_for_a_name_whose_challenge_is_served(
    pebble: Pebble, dns_server: DnsServer, challenge_files: ChallengeFiles
) -> None:
    domain = name()
    dns_server.point(domain, "127.0.0.1")

    issued = await AcmeClient(pebble.acme_config()).issue(domain, challenge_files.publish)

    chain = x509.load_pem_x509_certificates(issued.fullchain_pem.encode())
    names = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [domain]
    assert issued.expires_at == chain[0].not_valid_after_utc
    assert "PRIVATE KEY" in issued.private_key_pem
    assert any(path.startswith("/.well-known/acme-challenge/") for path in challenge_files.files)


async def test_one_account_orders_several_certificates(
    pebble: Pebble, dns_server: DnsServer, challenge_files: ChallengeFiles
) -> None:
    client = AcmeClient(pebble.acme_config())
    first, second = name(), name()
    dns_server.point(first, "127.0.0.1")
    dns_server.point(second, "127.0.0.1")

    a = await client.issue(first, challenge_files.publish)
    b = await client.issue(second, challenge_files.publish)

    assert a.fullchain_pem != b.fullchain_pem
    assert a.private_key_pem != b.private_key_pem


async def test_a_challenge_not_served_fails_with_the_cas_reason(
    pebble: Pebble, dns_server: DnsServer
) -> None:
    domain = name()
    dns_server.point(domain, "127.0.0.1")

    async def publish_nothing(_: list[tuple[str, str]]) -> None:
        pass

    with pytest.raises(AcmeFailed) as failed:
        await AcmeClient(pebble.acme_config()).issue(domain, publish_nothing)

    assert "validation failed" in str(failed.value)
    assert "404" in str(failed.value) or "unauthorized" in str(failed.value)
    assert not failed.value.rate_limited


async def test_a_ca_that_is_down_is_a_failure_not_a_hang(tmp_path: Path) -> None:
    down = AcmeConfig(directory_url=f"https://127.0.0.1:{free_port()}/dir")

    async def publish(_: list[tuple[str, str]]) -> None:
        raise AssertionError("nothing to publish for a CA that is down")

    with pytest.raises(AcmeFailed) as failed:
        await AcmeClient(down).issue(name(), publish)

    assert "Connection" in str(failed.value) or "refused" in str(failed.value)
