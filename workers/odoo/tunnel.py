"""Byte streams to a port on a server's loopback, over the runner's SSH connection
(a direct-tcpip channel: RFC 4254 §7.2), counted against the server's session cap."""

from __future__ import annotations

import asyncssh

from workers.odoo.http import Reader, Writer
from workers.odoo.jsonrpc import Opener
from workers.ssh.runner import ServerConnectionInfo, SshRunner


def loopback_opener(runner: SshRunner) -> Opener:
    async def open_stream(server: ServerConnectionInfo, port: int) -> tuple[Reader, Writer]:
        async def opener(
            conn: asyncssh.SSHClientConnection,
        ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
            return await conn.open_connection("127.0.0.1", port, encoding=None)

        # The runner's own opening: one reused connection, pinned host key, one retry on a
        # connection that died unnoticed (workers/ssh/runner.py; exposure asked for).
        reader, writer = await runner._open_channel(server, opener)
        return reader, writer

    return open_stream
