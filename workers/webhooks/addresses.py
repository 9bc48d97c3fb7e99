"""Where webhooks may go (SSRF, issue 17): public addresses over https; loopback, private,
link-local, metadata and the control plane's own addresses only when
ODOOFLEET_WEBHOOK_ALLOWED_NETWORKS names them, and plain http only to those networks.

The policy is the servers' (workers/ssh/network_policy.py) with the private ranges refused too:
a webhook receiver is somebody's public endpoint, never a host in the control plane's LAN.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Final, TypeAlias
from urllib.parse import urlsplit

from workers.runtime.config import WorkerConfig
from workers.ssh.control_plane_addresses import control_plane_addresses
from workers.ssh.network_policy import (
    METADATA_NAMES,
    RESOLVE_TIMEOUT_SECONDS,
    AddressNotAllowed,
    IpAddress,
    NetworkPolicy,
    parse_networks,
)

PRIVATE_NETWORKS: Final = parse_networks(
    "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,198.18.0.0/15,fc00::/7"
)
Resolve: TypeAlias = Callable[[str, int], Awaitable[list[IpAddress]]]


class WebhookAddresses:
    """Checks a webhook URL when it is given and every address it resolves to when it is
    dialled; the caller dials only the address returned (no second lookup to rebind)."""

    def __init__(self, policy: NetworkPolicy, resolve: Resolve | None = None) -> None:
        self.policy = policy
        self._resolve = resolve or system_resolve

    def plain_http_allowed(self, address: IpAddress) -> bool:
        return any(address in network for network in self.policy.allowed)

    async def address_for(self, host: str, port: int, *, tls: bool) -> str:
        """The first address of `host` a webhook may reach. Raises AddressNotAllowed, or
        OSError/TimeoutError when the name does not resolve."""
        literal = _literal(host)
        if literal is None and host.rstrip(".").lower() in METADATA_NAMES:
            raise AddressNotAllowed(host)
        found = [literal] if literal is not None else await self._resolve(host, port)
        for address in found:
            mapped = _unmapped(address)
            if self.policy.permits(mapped) and (tls or self.plain_http_allowed(mapped)):
                return str(address)
        raise AddressNotAllowed(host)


def webhook_addresses(settings: WorkerConfig, resolve: Resolve | None = None) -> WebhookAddresses:
    policy = NetworkPolicy(
        allowed=parse_networks(settings.webhook_allowed_networks),
        denied=PRIVATE_NETWORKS,
        own_addresses=control_plane_addresses(settings.database_url, settings.nats_url),
    )
    return WebhookAddresses(policy, resolve)


def url_problem(url: str, allowed: WebhookAddresses) -> str | None:
    """What is wrong with a webhook URL as given (None: nothing). A host name is judged when
    it is dialled; a literal address is judged here too."""
    try:
        parts = urlsplit(url)
        if parts.port == 0:
            return "port 0 reaches nothing"
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    literal = _literal(parts.hostname)
    if parts.scheme == "http" and (literal is None or not allowed.plain_http_allowed(literal)):
        return "must be https (http only to ODOOFLEET_WEBHOOK_ALLOWED_NETWORKS)"
    if literal is not None and not allowed.policy.permits(_unmapped(literal)):
        return "is an address webhooks may not be sent to"
    if parts.hostname.rstrip(".").lower() in METADATA_NAMES:
        return "is an address webhooks may not be sent to"
    return None


async def system_resolve(host: str, port: int) -> list[IpAddress]:
    infos = await asyncio.wait_for(
        asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
        RESOLVE_TIMEOUT_SECONDS,
    )
    # An IPv6 link-local answer carries its zone (`fe80::1%eth0`).
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _unmapped(address: IpAddress) -> IpAddress:
    # ::ffff:127.0.0.1 reaches 127.0.0.1: judge the IPv4 address it carries.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
