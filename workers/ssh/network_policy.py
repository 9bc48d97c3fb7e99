"""Which addresses a server may have, so that servers are no proxy into the control plane's
network (SSRF, issue 13): never loopback, link-local, cloud metadata or the
control plane's own addresses unless the operator allows them; private ranges are allowed
(people host Odoo in their own LAN or VPC) unless the operator denies them.

A host name is resolved once per check and the caller connects to the address that was
checked, so a name that resolves elsewhere a moment later (DNS rebinding) changes nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Final, TypeAlias

IpAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED_NETWORKS: Final = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, and 169.254.169.254: AWS, GCP, Azure, OpenStack metadata
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/96",  # IPv4-compatible (deprecated) forms, :: and ::1 among them
        "::1/128",
        "fe80::/10",
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "ff00::/8",
    )
)
# Names that reach a cloud's metadata service whatever they resolve to here.
METADATA_NAMES: Final = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
LOOPBACK_NETWORKS: Final = "127.0.0.0/8,::1/128"
RESOLVE_TIMEOUT_SECONDS: Final = 5.0


class AddressNotAllowed(Exception):
    """The host is, or resolves only to, an address servers may not have.

    One message whatever the reason, so that refusals tell nothing about the network behind.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(f"{host} is not an address odoofleet may connect to")


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """`"10.0.0.0/8, fd00::/8"` (comma-separated CIDRs); ValueError names a bad one."""
    found = []
    for part in text.split(","):
        if part.strip():
            try:
                found.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError as e:
                raise ValueError(f"not a network in CIDR notation: {part.strip()!r}") from e
    return tuple(found)


class NetworkPolicy:
    def __init__(
        self,
        *,
        allowed: Iterable[IpNetwork] = (),
        denied: Iterable[IpNetwork] = (),
        own_addresses: Iterable[IpAddress] = (),
    ) -> None:
        self.allowed = tuple(allowed)
        self.denied = (*REFUSED_NETWORKS, *denied)
        self.own_addresses = frozenset(own_addresses)

    def permits(self, address: IpAddress) -> bool:
        # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address it carries.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed):
            return True
        if address in self.own_addresses:
            return False
        return not any(address in network for network in self.denied)

    async def resolve(self, host: str, port: int) -> str:
        """The first address of `host` that a server may have, to connect to.

        Raises AddressNotAllowed, or socket.gaierror/TimeoutError when the name does not
        resolve (the caller says so: an unresolvable name reaches nothing).
        """
        literal = _literal(host)
        if literal is not None:
            if self.permits(literal):
                return str(literal)
            raise AddressNotAllowed(host)
        if host.rstrip(".").lower() in METADATA_NAMES:
            raise AddressNotAllowed(host)
        for address in await _addresses(host, port):
            if self.permits(address):
                return str(address)
        raise AddressNotAllowed(host)


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def _addresses(host: str, port: int) -> list[IpAddress]:
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
        RESOLVE_TIMEOUT_SECONDS,
    )
    found: list[IpAddress] = []
    for _family, _kind, _proto, _name, sockaddr in infos:
        # An IPv6 link-local answer carries its zone (`fe80::1%eth0`).
        found.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
    return found
