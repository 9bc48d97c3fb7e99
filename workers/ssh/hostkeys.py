"""Server host keys: OpenSSH public-key lines, their SHA256 fingerprints, and pinning."""

from __future__ import annotations

import asyncssh
import msgspec


class HostKey(msgspec.Struct, frozen=True):
    """A server host key as an OpenSSH line (`ssh-ed25519 AAAA…`) and its fingerprint."""

    line: str
    fingerprint: str


def parse_host_key(line: str) -> asyncssh.SSHKey:
    """Read an OpenSSH public-key line; a known_hosts line with a host pattern is refused."""
    try:
        return asyncssh.import_public_key(line.strip())
    except (asyncssh.KeyImportError, ValueError) as e:
        raise ValueError(f"not an OpenSSH public key line: {e}") from e


def host_key_of(key: asyncssh.SSHKey) -> HostKey:
    # The comment is dropped: only the algorithm and key data identify a host key.
    line = key.export_public_key("openssh").decode("ascii").split()
    return HostKey(line=f"{line[0]} {line[1]}", fingerprint=key.get_fingerprint("sha256"))


def fingerprint(public_key_line: str) -> str:
    """`SHA256:…` of an OpenSSH public-key line, as `ssh-keygen -lf` prints it."""
    return host_key_of(parse_host_key(public_key_line)).fingerprint


def pinned_known_hosts(public_key_line: str) -> asyncssh.SSHKnownHosts:
    """known_hosts trusting exactly this key for whatever host and port we dial.

    The host pattern is `*` because the key is pinned per server record, not per address:
    a server re-registered under another address keeps its pin.
    """
    key = host_key_of(parse_host_key(public_key_line))
    return asyncssh.import_known_hosts(f"* {key.line}\n")
