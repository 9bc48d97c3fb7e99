"""The public addresses of a server, found at validation: where its custom domains must point.
Its SSH host when that is an address; otherwise, per family, the source address of its route
to the Internet when that address is global (`ip route get` to a documentation address sends
nothing). A server behind NAT shows its private address there, so nothing is recorded and the
operator sets publicIpv4/publicIpv6."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from workers.server.remote import Remote
from workers.server.shell import cmd, sequence
from workers.ssh.errors import SshError

_SRC: Final = re.compile(r"\bsrc\s+(\S+)")
# RFC 5737 / RFC 3849 documentation addresses: the route to them is the default route.
PROBES: Final = {4: "192.0.2.1", 6: "2001:db8::1"}


def route_command() -> str:
    return sequence(
        *(
            f"{cmd('ip', '-o', f'-{family}', 'route', 'get', probe)} 2>/dev/null"
            for family, probe in PROBES.items()
        ),
        "true",
    )


def parse_routes(output: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for match in _SRC.finditer(output):
        try:
            address = ipaddress.ip_address(match.group(1))
        except ValueError:
            continue
        if address.is_global:
            found.setdefault(address.version, str(address))
    return found


async def detect_public_addresses(remote: Remote, host: str) -> tuple[str | None, str | None]:
    """(IPv4, IPv6); a detection that fails finds nothing rather than failing validation."""
    found: dict[int, str] = {}
    try:
        given = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        found[given.version] = str(given)
    try:
        result = await remote.run(route_command(), time_limit=15.0)
    except SshError:
        return found.get(4), found.get(6)
    for family, address in parse_routes(result.stdout if result.ok else "").items():
        found.setdefault(family, address)
    return found.get(4), found.get(6)
