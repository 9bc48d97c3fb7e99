"""The SSH server tests use where OpenSSH's sshd is not installed: asyncssh, in a process of
its own started by SshdServer (tests/sshd_harness.py) with its config file on the command line,
like sshd, so a test can find it, freeze it or kill it. Host key pinned, public-key login with
the test's client key, password login offered and always refused (root has no password), SFTP
on the local filesystem, commands as odoofleet.sandbox runs them, log lines like sshd's.
SIGUSR1 drops every open connection (a network failure)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import asyncssh

from odoofleet.sandbox.session import run_session


class _Server(asyncssh.SSHServer):
    def __init__(self, daemon: _Daemon) -> None:
        self.daemon = daemon
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = ("", 0)

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.peer = conn.get_extra_info("peername")[:2]
        self.daemon.connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.daemon.connections.discard(self.conn)

    def password_auth_supported(self) -> bool:
        return bool(self.daemon.config["password_auth"])

    def validate_password(self, username: str, password: str) -> bool:
        self.daemon.log(f"Failed password for {username} from {self.peer[0]} port {self.peer[1]}")
        return False

    def auth_completed(self) -> None:
        self.daemon.log(f"Accepted publickey for root from {self.peer[0]} port {self.peer[1]}")


class _Daemon:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.connections: set[asyncssh.SSHServerConnection] = set()

    def log(self, line: str) -> None:
        with open(self.config["log"], "a") as log:
            log.write(line + "\n")

    async def _session(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        host, port = process.get_extra_info("peername")[:2]
        local = process.get_extra_info("sockname")[1]
        env = {**self.config["env"], "SSH_CLIENT": f"{host} {port} {local}"}
        await run_session(process, env)

    def drop_connections(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        self.log(f"Dropped connections ({len(self.connections)})")

    async def serve(self) -> None:
        await asyncssh.create_server(
            lambda: _Server(self),
            "127.0.0.1",
            self.config["port"],
            server_host_keys=[self.config["host_key"]],
            authorized_client_keys=self.config["authorized_keys"],
            process_factory=self._session,
            sftp_factory=True,
            encoding=None,
            allow_scp=False,
        )
        self.log(f"Server listening on 127.0.0.1 port {self.config['port']}.")
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, self.drop_connections)
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        await stopped.wait()
        self.drop_connections()


def main(config_file: str) -> None:
    asyncio.run(_Daemon(json.loads(Path(config_file).read_text())).serve())


if __name__ == "__main__":
    main(sys.argv[1])
