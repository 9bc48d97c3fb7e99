"""Webhook receivers on 127.0.0.1 that answer as a test scripts them, an independent
implementation of the Standard Webhooks signature check, and the worlds the webhook tests run
in (relay, projections, API and the webhook worker on this test's database and stream)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Hang:
    """Read the request, never answer (until the receiver closes)."""


Behaviour = Callable[[int, "Received"], Answer | Hang]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


def always(answer: Answer) -> Behaviour:
    return lambda _n, _r: answer


@dataclass
class Receiver:
    """An HTTP/1.1 server (keep-alive) that records every request, and answers the n-th
    (0-based) with `behaviour(n, request)`."""

    behaviour: Behaviour = field(default_factory=lambda: always(Answer()))
    received: list[Received] = field(default_factory=list)
    answered: list[tuple[Received, int]] = field(default_factory=list)
    port: int = 0
    tls: ssl.SSLContext | None = None
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivered_ids(self) -> list[str]:
        """webhook-ids of the requests answered 2xx, in the order they came."""
        return [r.id for r, status in self.answered if 200 <= status < 300]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self._closing.is_set():
                request = await _read_request(reader)
                if request is None:
                    return
                n = len(self.received)
                self.received.append(request)
                reply = self.behaviour(n, request)
                if isinstance(reply, Hang):
                    await self._closing.wait()
                    return
                head = [f"HTTP/1.1 {reply.status} X", f"Content-Length: {len(reply.body)}"]
                head += [f"{name}: {value}" for name, value in reply.headers]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + reply.body)
                await writer.drain()
                self.answered.append((request, reply.status))
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    line = await reader.readline()
    if not line:
        return None
    headers: dict[str, str] = {}
    while True:
        raw = (await reader.readline()).decode().rstrip("\r\n")
        if not raw:
            break
        name, _, value = raw.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(headers, body, time.monotonic())


@contextlib.asynccontextmanager
async def receivers(*behaviours: Behaviour) -> AsyncIterator[list[Receiver]]:
    started = [Receiver(b) for b in behaviours]
    for receiver in started:
        await receiver.start()
    try:
        yield started
    finally:
        for receiver in started:
            await receiver.close()


def verifies(secret: str, request: Received, tolerance: float = 300.0) -> bool:
    """The Standard Webhooks check, written from the specification (not the library that
    signs): HMAC-SHA256 with the base64-decoded secret over `id.timestamp.body`, compared with
    each space-separated `v1,<base64>` signature; the timestamp within the tolerance."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    for signature in request.headers["webhook-signature"].split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return True
    return False
