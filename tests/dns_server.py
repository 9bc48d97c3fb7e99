"""A DNS server the tests start and fill: Pebble's `pebble-challtestsrv` (Debian package
`pebble`), asked through its management API to answer A/AAAA records; names it was given no
record for get no address (its default addresses are switched off)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest

from odoofleet.embedded import free_port, wait_for_port

CHALLTESTSRV = "pebble-challtestsrv"


def require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is not None:
        return found
    reason = f"{name} is not installed (apt-get install pebble)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"must run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


class DnsServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.management = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """As ODOOFLEET_DNS_RESOLVERS and Pebble's -dnsserver take it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                require_tool(CHALLTESTSRV),
                "-dns01", self.address,
                "-http01", "",
                "-https01", "",
                "-tlsalpn01", "",
                "-management", f"127.0.0.1:{self.management}",
                "-defaultIPv4", "",
                "-defaultIPv6", "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.management, 10.0)
        wait_for_port(self.port, 10.0)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def point(self, name: str, *addresses: str) -> None:
        """`name` answers `addresses` (A for IPv4, AAAA for IPv6), replacing what it had."""
        host = name.rstrip(".") + "."
        self._post("clear-a", {"host": host})
        self._post("clear-aaaa", {"host": host})
        v4 = [a for a in addresses if ":" not in a]
        v6 = [a for a in addresses if ":" in a]
        if v4:
            self._post("add-a", {"host": host, "addresses": v4})
        if v6:
            self._post("add-aaaa", {"host": host, "addresses": v6})

    def _post(self, path: str, body: dict[str, object]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.management}/{path}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200, f"{path}: {response.status}"


@contextlib.contextmanager
def running_dns_server() -> Iterator[DnsServer]:
    server = DnsServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    with running_dns_server() as server:
        yield server
