"""One HTTP/1.1 POST of a JSON body over an already open byte stream, with a size cap.

The stream is an SSH direct-tcpip channel to the server's loopback (workers/odoo/tunnel.py):
no HTTP client library dials through an SSH channel, and Odoo's /jsonrpc needs only one
request per connection (`Connection: close`), answered with Content-Length or until EOF."""

from __future__ import annotations

import asyncio
from typing import Final, Protocol

_MAX_HEADER_BYTES: Final = 16 * 1024


class Reader(Protocol):
    """What post_json reads with (asyncio's and asyncssh's stream readers both have it)."""

    async def readuntil(self, separator: bytes) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...
    async def read(self, n: int) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...


class HttpError(Exception):
    """No usable HTTP answer (cut off, malformed, too large, or not 200)."""


class HttpAnswer:
    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


def request_bytes(host: str, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def post_json(
    reader: Reader,
    writer: Writer,
    *,
    host: str,
    path: str,
    body: bytes,
    max_bytes: int,
) -> HttpAnswer:
    writer.write(request_bytes(host, path, body))
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as e:
        raise HttpError("the answer's headers are too large") from e
    except asyncio.IncompleteReadError as e:
        raise HttpError("the connection closed before an answer") from e
    if len(head) > _MAX_HEADER_BYTES:
        raise HttpError("the answer's headers are too large")
    status, headers = _parse_head(head)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        data = await _chunked(reader, max_bytes)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if length > max_bytes:
            raise HttpError(f"the answer is larger than {max_bytes} bytes")
        data = await reader.readexactly(length)
    else:
        data = await reader.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HttpError(f"the answer is larger than {max_bytes} bytes")
    return HttpAnswer(status, data)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise HttpError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    try:
        if int(headers.get("content-length", "0")) < 0:
            raise HttpError("a negative Content-Length")
    except ValueError as e:
        raise HttpError("a Content-Length that is not a number") from e
    return int(parts[1]), headers


async def _chunked(reader: Reader, max_bytes: int) -> bytes:
    data = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError as e:
            raise HttpError("a malformed chunk size") from e
        if size == 0:
            return bytes(data)
        if len(data) + size > max_bytes:
            raise HttpError(f"the answer is larger than {max_bytes} bytes")
        data += await reader.readexactly(size)
        await reader.readexactly(2)
