"""Writing one part of a backup (a byte stream, sealed in chunks, to a destination) and
reading one back (opened, checked against its recorded size and SHA-256)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from events.backup import BackupPart, PartName
from workers.backups.destinations import Destination, DestinationError
from workers.backups.sealing import Opener, Sealer, Tampered
from workers.server.remote import StepError

# Chunks in flight between the reader (the server) and the writer (the destination): the
# two overlap, and memory stays a few MiB whatever the size of the part.
_IN_FLIGHT: Final = 4
FILE_NAMES: Final[dict[PartName, str]] = {
    "database": "database.dump",
    "filestore": "filestore.tar",
    "manifest": "manifest.json",
}


def part_key(instance_id: str, backup_id: str, name: PartName) -> str:
    return f"{instance_id}/{backup_id}/{FILE_NAMES[name]}.ofb"


async def store_part(
    destination: Destination,
    key: str,
    name: PartName,
    data_key: bytes,
    source: AsyncIterator[bytes],
) -> BackupPart:
    """Seal `source` into the object `key`; the object exists only once it is whole."""
    sealer = Sealer(data_key, name)
    try:
        writer = await destination.writer(key)
    except DestinationError as e:
        raise StepError(str(e)) from e
    # The reader hands over sealed chunks, then None at the end, or what it failed with.
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(_IN_FLIGHT)

    async def read() -> None:
        try:
            async for chunk in source:
                await queue.put(sealer.feed(chunk))
            await queue.put(sealer.finish())
        except Exception as e:  # a failed dump: its writer aborts, nothing is committed
            await queue.put(e)
            return
        await queue.put(None)

    reading = asyncio.create_task(read())
    try:
        while (sealed := await queue.get()) is not None:
            if isinstance(sealed, Exception):
                raise sealed
            if sealed:
                await writer.write(sealed)
        await writer.commit()
    except DestinationError as e:
        await _abandon(reading, writer)
        raise StepError(str(e)) from e
    except BaseException:
        await _abandon(reading, writer)
        raise
    return BackupPart(
        name=name, key=key, size=sealer.size, stored_size=sealer.stored_size, sha256=sealer.sha256
    )


async def _abandon(reading: asyncio.Task[None], writer: object) -> None:
    reading.cancel()
    with contextlib.suppress(BaseException):
        await reading
    abort = getattr(writer, "abort", None)
    if abort is not None:
        await abort()


async def open_part(
    destination: Destination, part: BackupPart, data_key: bytes
) -> AsyncIterator[bytes]:
    """The part's plaintext; StepError when it does not authenticate, or its size or
    SHA-256 differ from what was recorded when it was taken (checked at the end: a caller
    that must not act on a bad part reads it through once first, see `verify_part`)."""
    opener = Opener(data_key, part.name)
    try:
        async for chunk in destination.read(part.key):
            if plain := opener.feed(chunk):
                yield plain
        opener.finish()
    except Tampered as e:
        raise StepError(f"the {part.name} part is damaged or not this backup's: {e}") from e
    except DestinationError as e:
        raise StepError(str(e)) from e
    if opener.size != part.size or opener.sha256 != part.sha256:
        raise StepError(
            f"the {part.name} part's checksum does not match: recorded sha256 {part.sha256}"
            f" ({part.size} bytes), found {opener.sha256} ({opener.size} bytes); refusing it"
        )


async def verify_part(destination: Destination, part: BackupPart, data_key: bytes) -> str:
    async for _ in open_part(destination, part, data_key):
        pass
    return f"{part.name}: {part.size} bytes, sha256 {part.sha256} verified"
