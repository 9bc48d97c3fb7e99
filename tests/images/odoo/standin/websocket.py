"""RFC 6455 websocket for /websocket: the opening handshake, frames, ping/pong and close.

Odoo's bus expects `{"event_name": "subscribe", ...}` messages and pushes notifications; this
stand-in answers every text message with the same text (an echo) so tests can prove the
connection carries data both ways through a proxy."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
import threading
from typing import BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_GOING_AWAY = 1001
MAX_MESSAGE = 1 << 20


class ProtocolError(Exception):
    pass


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake_error(headers: dict[str, str], method: str) -> str | None:
    """Why the request is not a valid opening handshake (RFC 6455 §4.2.1), or None."""
    if method != "GET":
        return "the method must be GET"
    if headers.get("upgrade", "").lower() != "websocket":
        return "missing Upgrade: websocket"
    if "upgrade" not in [
        token.strip().lower() for token in headers.get("connection", "").split(",")
    ]:
        return "missing Connection: Upgrade"
    if headers.get("sec-websocket-version") != "13":
        return "Sec-WebSocket-Version must be 13"
    try:
        if len(base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)) != 16:
            return "Sec-WebSocket-Key must be 16 bytes, base64"
    except ValueError:
        return "Sec-WebSocket-Key must be 16 bytes, base64"
    return None


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(stream: BinaryIO) -> tuple[bool, int, bytes]:
    first, second = _read_exact(stream, 2)
    fin, opcode, masked, length = (
        bool(first & 0x80),
        first & 0x0F,
        bool(second & 0x80),
        second & 0x7F,
    )
    if first & 0x70:
        raise ProtocolError("reserved bits set")
    if not masked:
        raise ProtocolError("client frames must be masked")
    if length == 126:
        (length,) = struct.unpack("!H", _read_exact(stream, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", _read_exact(stream, 8))
    if length > MAX_MESSAGE:
        raise ProtocolError("message too big")
    mask = _read_exact(stream, 4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(_read_exact(stream, length)))
    return fin, opcode, payload


def encode_frame(opcode: int, payload: bytes) -> bytes:
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([len(payload)])
    elif len(payload) < 1 << 16:
        header += bytes([126]) + struct.pack("!H", len(payload))
    else:
        header += bytes([127]) + struct.pack("!Q", len(payload))
    return header + payload


class Connection:
    """One accepted websocket; `close_going_away` is called from another thread at shutdown."""

    def __init__(self, rfile: BinaryIO, wfile: BinaryIO) -> None:
        self.rfile, self.wfile = rfile, wfile
        self._lock = threading.Lock()
        self.closed = False

    def send(self, opcode: int, payload: bytes) -> None:
        with self._lock:
            if not self.closed:
                self.wfile.write(encode_frame(opcode, payload))
                self.wfile.flush()

    def close(self, code: int, reason: str = "") -> None:
        with contextlib.suppress(OSError):
            self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode())
        self.closed = True

    def close_going_away(self) -> None:
        self.close(CLOSE_GOING_AWAY, "server shutting down")

    def serve(self) -> None:
        fragments: list[bytes] = []
        message_opcode = OP_TEXT
        while not self.closed:
            try:
                fin, opcode, payload = read_frame(self.rfile)
            except (EOFError, OSError, ValueError):
                return
            except ProtocolError as exc:
                self.close(1002, str(exc))
                return
            if opcode == OP_PING:
                self.send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self.close(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000)
                return
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                if opcode != OP_CONTINUATION:
                    message_opcode, fragments = opcode, []
                fragments.append(payload)
                if fin:
                    self.send(message_opcode, b"".join(fragments))
            elif opcode != OP_PONG:
                self.close(1002, "unknown opcode")
                return
