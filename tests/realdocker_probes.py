"""What the real-Docker saga tests look at from outside: HTTP and websocket requests through
the server's proxy, a poller counting failed requests, and docker calls off the event loop."""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import socket
import threading
import time
from pathlib import Path

from realdocker_harness import DockerEngine, Inventory

PROXY_PORT = 80


def get(host: str, path: str = "/web/health", port: int = PROXY_PORT) -> tuple[int, str]:
    """GET through the proxy on 127.0.0.1 with this Host header, on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def websocket_handshake(host: str, path: str = "/websocket", port: int = PROXY_PORT) -> str:
    """The status line the server answers an RFC 6455 opening handshake with."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request.encode())
        answer = conn.recv(4096).decode(errors="replace")
    return answer.split("\r\n", 1)[0]


class Poller:
    """GETs /web/health of one instance through the proxy every `interval` seconds, in a thread
    of its own (the event loop runs the workers); every answer but a 200 is a failure."""

    def __init__(self, host: str, interval: float = 0.05) -> None:
        self.host, self.interval = host, interval
        self.polls = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.polls += 1
            try:
                status, body = get(self.host)
                if status != 200:
                    self.failures.append(f"HTTP {status}: {body[:80]}")
            except OSError as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))


async def docker(engine: DockerEngine, *args: str) -> str:
    """`docker …` off the event loop; its stdout, stripped ('' when it failed)."""
    done = await asyncio.to_thread(engine.docker, *args, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


async def inventory(engine: DockerEngine) -> Inventory:
    return await asyncio.to_thread(engine.inventory)


def listing(root: Path) -> list[str]:
    """Everything under the server's base directory, relative paths, sorted."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))
