"""Pebble, the ACME test CA (Debian package `pebble`), on loopback: its own TLS certificate
made here, challenges validated on `http_port` of whatever address the test DNS server gives
the name, no random sleeps or nonce rejections (the tests must be quick and repeatable)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dns_server import DnsServer, require_tool

from odoofleet.embedded import free_port
from workers.acme.issuer import AcmeConfig


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble test listener")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "listener.pem", directory / "listener.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Pebble:
    def __init__(self, work: Path, dns: DnsServer, http_port: int) -> None:
        self.work = work
        self.dns = dns
        self.http_port = http_port
        self.port = free_port()
        self.management = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.listener_cert, self.listener_key = _self_signed(work)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def acme_config(self) -> AcmeConfig:
        return AcmeConfig(
            directory_url=self.directory_url,
            email="ops@example.com",
            ca_bundle=str(self.listener_cert),
        )

    def start(self) -> None:
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management}",
                "certificate": str(self.listener_cert),
                "privateKey": str(self.listener_key),
                "httpPort": self.http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        config_file = self.work / "pebble.json"
        config_file.write_text(json.dumps(config))
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        self.log = (self.work / "pebble.log").open("wb")
        self.proc = subprocess.Popen(
            [require_tool("pebble"), "-config", str(config_file), "-dnsserver", self.dns.address],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self._get(self.directory_url)
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"pebble did not start: {self.logs()}") from None
                time.sleep(0.05)

    def root_pem(self) -> bytes:
        """The root the issued chains end at (a new one at every start of Pebble)."""
        return self._get(f"https://127.0.0.1:{self.management}/roots/0")

    def logs(self) -> str:
        return (self.work / "pebble.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
            self.log.close()

    def _get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.listener_cert))
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            body: bytes = response.read()
            return body


@contextlib.contextmanager
def running_pebble(work: Path, dns: DnsServer, http_port: int) -> Iterator[Pebble]:
    pebble = Pebble(work, dns, http_port)
    pebble.start()
    try:
        yield pebble
    finally:
        pebble.stop()
