"""Byte streams to a port on a server's loopback, over the runner's SSH connection
(a direct-tcpip channel: RFC 4254 §7.2), counted against the server's session cap."""

from __future__ import annotations

from workers.odoo.http import Reader, Writer
from workers.odoo.jsonrpc import Opener
from workers.ssh.runner import ServerConnectionInfo, SshRunner


def loopback_opener(runner: SshRunner) -> Opener:
    async def open_stream(server: ServerConnectionInfo, port: int) -> tuple[Reader, Writer]:
        # The runner's own opening: one reused connection, pinned host key, one retry on a
        # connection that died unnoticed (workers/ssh/runner.py).
        reader, writer = await runner.open_tcp(server, "127.0.0.1", port)
        return reader, writer

    return open_stream
