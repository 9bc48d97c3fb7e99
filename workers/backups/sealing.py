"""The stored form of a backup part: AES-256-GCM in chunks, so a multi-GB dump streams
through a fixed amount of memory and every chunk is authenticated on its own.

Layout: `OFB1`, then per chunk a 4-byte big-endian length, a 12-byte random nonce and the
ciphertext with its tag. Each chunk's associated data binds it to its part, its index and
whether it is the last: chunks cannot be reordered, moved to another part, or cut off at a
chunk boundary without the decryption failing. Nonces are random (not counters) because a
part written again after a crash is encrypted again with the same key."""

from __future__ import annotations

import hashlib
import os
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC: Final = b"OFB1"
CHUNK: Final = 1 << 20
_LENGTH: Final = struct.Struct(">I")
_NONCE: Final = 12
_TAG: Final = 16


class Tampered(Exception):
    """The stored part is not what was written: wrong key, altered, truncated or reordered."""


def _aad(part: str, index: int, last: bool) -> bytes:
    return part.encode() + struct.pack(">QB", index, last)


class Sealer:
    """Plaintext in (any sizes), stored bytes out; counts and hashes the plaintext."""

    def __init__(self, key: bytes, part: str) -> None:
        self._cipher = AESGCM(key)
        self._part = part
        self._buffer = bytearray()
        self._index = 0
        self._digest = hashlib.sha256()
        self.size = 0
        self.stored_size = 0
        self._started = False

    def feed(self, data: bytes) -> bytes:
        self._digest.update(data)
        self.size += len(data)
        self._buffer += data
        out = bytearray(self._header())
        # The last chunk is only known at finish(): keep at least one chunk's worth back.
        while len(self._buffer) > CHUNK:
            out += self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return self._counted(bytes(out))

    def finish(self) -> bytes:
        out = self._header() + self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return self._counted(out)

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _header(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return MAGIC

    def _seal(self, chunk: bytes, *, last: bool) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._cipher.encrypt(nonce, chunk, _aad(self._part, self._index, last))
        self._index += 1
        return _LENGTH.pack(len(sealed)) + nonce + sealed

    def _counted(self, out: bytes) -> bytes:
        self.stored_size += len(out)
        return out


class Opener:
    """Stored bytes in (any sizes), plaintext out; `finish` refuses a part cut short."""

    def __init__(self, key: bytes, part: str) -> None:
        self._cipher = AESGCM(key)
        self._part = part
        self._buffer = bytearray()
        self._index = 0
        self._header = False
        self._ended = False
        self._digest = hashlib.sha256()
        self.size = 0

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        if not self._header:
            if len(self._buffer) < len(MAGIC):
                return b""
            if bytes(self._buffer[: len(MAGIC)]) != MAGIC:
                raise Tampered(f"{self._part}: not an odoofleet backup part")
            del self._buffer[: len(MAGIC)]
            self._header = True
        out = bytearray()
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length < _TAG or length > CHUNK + _TAG:
                raise Tampered(f"{self._part}: chunk {self._index} has an impossible length")
            end = _LENGTH.size + _NONCE + length
            if len(self._buffer) < end:
                break
            out += self._open(bytes(self._buffer[_LENGTH.size : end]))
            del self._buffer[:end]
        self._digest.update(out)
        self.size += len(out)
        return bytes(out)

    def finish(self) -> None:
        if not self._ended or self._buffer:
            raise Tampered(f"{self._part}: the stored part is cut short")

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _open(self, framed: bytes) -> bytes:
        if self._ended:
            raise Tampered(f"{self._part}: data after the last chunk")
        nonce, sealed = framed[:_NONCE], framed[_NONCE:]
        for last in (False, True):
            try:
                plain = self._cipher.decrypt(nonce, sealed, _aad(self._part, self._index, last))
            except InvalidTag:
                continue
            self._index += 1
            self._ended = last
            return plain
        raise Tampered(f"{self._part}: chunk {self._index} does not authenticate")
