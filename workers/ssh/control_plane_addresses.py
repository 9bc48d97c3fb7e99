"""The control plane's own addresses, which no server may have: those of this machine's
network interfaces and of the PostgreSQL and NATS it uses. Read once when a process starts."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict

from workers.ssh.network_policy import IpAddress, NetworkPolicy, parse_networks

_SIOCGIFADDR: Final = 0x8915
_IF_INET6: Final = Path("/proc/net/if_inet6")


def server_network_policy(
    *, allowed: str, denied: str, database_url: str, nats_url: str
) -> NetworkPolicy:
    """The policy from comma-separated CIDRs, with the control plane's own addresses (this
    machine's and those of the PostgreSQL and NATS at these URLs) always refused."""
    return NetworkPolicy(
        allowed=parse_networks(allowed),
        denied=parse_networks(denied),
        own_addresses=control_plane_addresses(database_url, nats_url),
    )


def control_plane_addresses(database_url: str, nats_url: str) -> set[IpAddress]:
    found = set(_interface_addresses())
    for host in _service_hosts(database_url, nats_url):
        found.update(_resolved(host))
    return found


def _interface_addresses() -> Iterator[IpAddress]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):  # an interface without an IPv4 address
                answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
                yield ipaddress.IPv4Address(answer[20:24])
    with contextlib.suppress(OSError):
        # One line per address: 32 hex digits, index, prefix, scope, flags, interface name.
        for line in _IF_INET6.read_text().splitlines():
            yield ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))


def _service_hosts(database_url: str, nats_url: str) -> Iterator[str]:
    with contextlib.suppress(Exception):  # a conninfo psycopg cannot read connects nowhere
        for host in str(conninfo_to_dict(database_url).get("host") or "").split(","):
            if host and not host.startswith("/"):  # a Unix socket directory
                yield host
    for url in nats_url.split(","):
        with contextlib.suppress(ValueError):
            name = urlsplit(url.strip()).hostname
            if name:
                yield name


def _resolved(host: str) -> set[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return set()
    return {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
