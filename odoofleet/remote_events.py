"""`odoofleet events tail --follow --api URL`: the public event stream of a remote API
(GET /api/events/stream), printed as it comes, resumed with Last-Event-ID after a broken
connection so that nothing is missed or printed twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any, Final

import httpcore
import msgspec

log = logging.getLogger(__name__)

_RETRY_SECONDS: Final = (1.0, 2.0, 5.0, 10.0)
_REFUSED: Final = frozenset({400, 401, 403, 404})


class SseMessage(msgspec.Struct, frozen=True):
    id: str | None
    event: str | None
    data: str | None


class RemoteRefused(Exception):
    """The API refused the stream (a bad token, a missing permission): retrying cannot help."""


async def messages(chunks: AsyncIterable[bytes]) -> AsyncIterator[SseMessage]:
    """Server-Sent Events from a byte stream (the WHATWG event-stream format; comments and
    `retry` are skipped)."""
    pending = b""
    fields: dict[str, list[str]] = {}
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        for raw in lines:
            line = raw.decode()
            if not line:
                if "data" in fields:
                    yield SseMessage(
                        id=fields.get("id", [None])[-1],
                        event=fields.get("event", [None])[-1],
                        data="\n".join(fields["data"]),
                    )
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields.setdefault(name, []).append(value.removeprefix(" "))


def format_public(data: str) -> str:
    """One line per public event: position, time, resource, type, data."""
    event: dict[str, Any] = msgspec.json.decode(data)
    return (
        f"{event['position']:>8} {event['occurredAt']} "
        f"{event['resourceType']}-{event['resourceId']} {event['type']} "
        f"{msgspec.json.encode(event['data']).decode()}"
    )


async def follow(
    api: str, token: str, stop: asyncio.Event, write: Callable[[str], None] = print
) -> None:
    """Print the stream until `stop`; reconnect (resuming) when the connection breaks."""
    await _Tail(api.rstrip("/") + "/api/events/stream", token, write).run(stop)


class _Tail:
    def __init__(self, url: str, token: str, write: Callable[[str], None]) -> None:
        self._url = url
        self._token = token
        self._write = write
        # The id of the last event printed: where a new connection resumes.
        self.last_id: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        async with httpcore.AsyncConnectionPool() as http:
            while not stop.is_set():
                before = self.last_id
                reading = asyncio.create_task(self._read(http))
                stopping = asyncio.create_task(stop.wait())
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not reading.done():
                    reading.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reading
                    return
                try:
                    reading.result()
                except (
                    httpcore.NetworkError,
                    httpcore.TimeoutException,
                    httpcore.ProtocolError,
                ) as e:
                    log.warning("the event stream broke (%s); resuming", e)
                failures = 0 if self.last_id != before else failures + 1
                pause = _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)

    async def _read(self, http: httpcore.AsyncConnectionPool) -> None:
        """Print one connection's events until it ends."""
        headers = [
            (b"Authorization", f"Bearer {self._token}".encode()),
            (b"Accept", b"text/event-stream"),
        ]
        if self.last_id is not None:
            headers.append((b"Last-Event-ID", self.last_id.encode()))
        async with http.stream("GET", self._url, headers=headers) as response:
            if response.status in _REFUSED:
                body = (await response.aread()).decode(errors="replace")
                raise RemoteRefused(f"{response.status}: {body}")
            if response.status != 200:
                log.warning("the event stream answered %s; retrying", response.status)
                return
            async for message in messages(response.aiter_stream()):
                if message.data is not None:
                    self._write(format_public(message.data))
                if message.id is not None:
                    self.last_id = message.id
