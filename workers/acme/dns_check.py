"""Whether a domain points at a server: its A/AAAA records (a CNAME chain is followed by the
resolver) asked of the configured resolver, compared with the server's public addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

# One check must end: a resolver that does not answer is a failed check, retried later.
LIFETIME = 5.0


@dataclass(frozen=True)
class Pointing:
    addresses: list[str]


@dataclass(frozen=True)
class NotPointing:
    message: str  # what the resolver answered, for `dnsMessage`


DnsAnswer = Pointing | NotPointing


def resolver_for(addresses: Sequence[str]) -> dns.asyncresolver.Resolver:
    """A resolver asking `addresses` (`host` or `host:port`, IPv6 as `[addr]:port`); none:
    the system's (/etc/resolv.conf)."""
    if not addresses:
        return dns.asyncresolver.Resolver()
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [_nameserver(address) for address in addresses]
    resolver.lifetime = LIFETIME
    return resolver


def _nameserver(address: str) -> dns.nameserver.Nameserver:
    host, port = address, 53
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = int(rest.lstrip(":") or 53)
    elif address.count(":") == 1:
        host, _, number = address.partition(":")
        port = int(number)
    ipaddress.ip_address(host)  # a resolver is named by its address, never by a name
    return dns.nameserver.Do53Nameserver(host, port)


async def lookup(resolver: dns.asyncresolver.Resolver, name: str) -> tuple[list[str], list[str]]:
    """The addresses `name` resolves to (A and AAAA) and what was wrong with each query.
    Names under `localhost` are loopback without asking (RFC 6761 §6.3): the sandbox's
    domains point at its server that way."""
    if name == "localhost" or name.endswith(".localhost"):
        return ["127.0.0.1"], []
    found: list[str] = []
    problems: list[str] = []
    for rdtype in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            problems.append(f"{name} does not exist (NXDOMAIN)")
            break
        except dns.resolver.NoAnswer:
            problems.append(f"no {rdtype} record")
            continue
        except dns.resolver.NoNameservers as e:
            problems.append(f"{rdtype}: no resolver answered ({_first_line(e)})")
            continue
        except dns.exception.Timeout:
            problems.append(f"{rdtype}: the resolver did not answer in {LIFETIME:g} s")
            continue
        found.extend(sorted(str(record) for record in answer))
    return found, problems


async def check_points_at(
    resolver: dns.asyncresolver.Resolver, name: str, server_addresses: Collection[str]
) -> DnsAnswer:
    """Pointing when every address the name resolves to is one of the server's (one other
    address would send some clients, and the CA, elsewhere)."""
    if not server_addresses:
        return NotPointing("the server's public address is unknown: set publicIpv4/publicIpv6")
    found, problems = await lookup(resolver, name)
    ours = {ipaddress.ip_address(a) for a in server_addresses}
    if not found:
        wanted = ", ".join(sorted(server_addresses))
        return NotPointing(f"{'; '.join(problems) or 'no address'}; expected {wanted}")
    foreign = [a for a in found if ipaddress.ip_address(a) not in ours]
    if foreign:
        wanted = ", ".join(sorted(server_addresses))
        return NotPointing(f"{name} resolves to {', '.join(found)}; expected {wanted}")
    return Pointing(found)


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
