"""A backup as Odoo's own database manager writes and restores it: a zip of `dump.sql`
(plain SQL), `filestore/` (the files of the database's filestore) and `manifest.json` (as
odoo/service/db.py dump_db_manifest writes it), streamed: built by zipfile and tarfile in one
thread from chunks handed over as they arrive, never whole in memory or on disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import shutil
import tarfile
import zipfile
from collections.abc import AsyncIterator
from typing import Any, Final

_DEPTH: Final = 8


class _Inbox:
    """A blocking reader (for tarfile and the thread) of chunks put in from the event loop."""

    def __init__(self) -> None:
        self._chunks: queue.Queue[bytes] = queue.Queue(_DEPTH)
        self._pending = b""
        self._ended = False

    def put(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size < 0 or len(self._pending) < size):
            chunk = self._chunks.get()
            if not chunk:
                self._ended = True
                break
            self._pending += chunk
        if size < 0:
            size = len(self._pending)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


class _Outbox:
    """What zipfile writes, handed to the event loop (waiting while the client is slow)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, out: asyncio.Queue[bytes | None]) -> None:
        self._loop, self._out = loop, out

    def write(self, data: bytes) -> int:
        asyncio.run_coroutine_threadsafe(self._out.put(bytes(data)), self._loop).result()
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def odoo_manifest(db_name: str, odoo_version: str, pg_version: str) -> dict[str, Any]:
    major = odoo_version.split(".")[0]
    return {
        "odoo_dump": "1",
        "db_name": db_name,
        "version": odoo_version,
        "version_info": [int(major), 0, 0, "final", 0, ""],
        "major_version": odoo_version,
        "pg_version": pg_version,
        "modules": {},
    }


async def odoo_zip(
    sql: AsyncIterator[bytes], filestore_tar: AsyncIterator[bytes], manifest: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The zip's bytes. `filestore_tar` is a tar of `filestore/<db>/…`: its files become
    `filestore/…` (Odoo's layout: the database's filestore directory itself)."""
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[bytes | None] = asyncio.Queue(_DEPTH)
    sql_in, tar_in = _Inbox(), _Inbox()
    failure: list[BaseException] = []

    def build() -> None:
        try:
            with zipfile.ZipFile(_Outbox(loop, out), "w", zipfile.ZIP_DEFLATED) as archive:
                with archive.open("dump.sql", "w", force_zip64=True) as entry:
                    while chunk := sql_in.read(1 << 20):
                        entry.write(chunk)
                with tarfile.open(fileobj=tar_in, mode="r|") as tar:  # type: ignore[call-overload]
                    for member in tar:
                        inside = member.name.split("/")[2:]
                        source = tar.extractfile(member) if member.isfile() else None
                        if source is None or not inside:
                            continue
                        name = "filestore/" + "/".join(inside)
                        with archive.open(name, "w", force_zip64=True) as entry:
                            shutil.copyfileobj(source, entry, 1 << 20)
                    tar_in.read()  # the tar's padding, so its feeder never waits
                archive.writestr("manifest.json", json.dumps(manifest, indent=4))
        except BaseException as e:
            failure.append(e)
        finally:
            asyncio.run_coroutine_threadsafe(out.put(None), loop).result()

    async def feed() -> None:
        for source, inbox in ((sql, sql_in), (filestore_tar, tar_in)):
            async for chunk in source:
                if chunk:
                    await asyncio.to_thread(inbox.put, chunk)
            await asyncio.to_thread(inbox.put, b"")

    building = loop.run_in_executor(None, build)
    feeding = asyncio.create_task(feed())
    try:
        while (chunk := await out.get()) is not None:
            yield chunk
            if feeding.done() and feeding.exception() is not None:
                raise feeding.exception()  # type: ignore[misc]
        await feeding
        if failure:
            raise failure[0]
    finally:
        feeding.cancel()
        with contextlib.suppress(BaseException):
            await feeding
        # Unblock the thread if it still waits for input or for room to write.
        for inbox in (sql_in, tar_in):
            with contextlib.suppress(queue.Full):
                inbox._chunks.put_nowait(b"")
        while not building.done():
            with contextlib.suppress(asyncio.QueueEmpty):
                out.get_nowait()
            await asyncio.sleep(0.01)
