"""Where backups are stored: a directory on a server over SFTP (`local`: the instance's own
server; `sftp`: another host, its host key pinned) or an S3-compatible bucket. Objects are
written under a fixed partial name and renamed (or a multipart upload completed) only when
whole, so a writer killed mid-way never leaves a partial object under the real key, and the
next writer of that key replaces or aborts what it left."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, Protocol

import asyncssh

READ_BYTES: Final = 1 << 20
# S3 parts must be at least 5 MiB, except the last.
S3_PART_BYTES: Final = 8 << 20


class DestinationError(Exception):
    """The destination refused or failed; the message is its own error, for the user."""


class ObjectWriter(Protocol):
    async def write(self, data: bytes) -> None: ...
    async def commit(self) -> None: ...
    async def abort(self) -> None: ...


class Destination(Protocol):
    async def writer(self, key: str) -> ObjectWriter: ...
    def read(self, key: str) -> AsyncIterator[bytes]: ...
    async def delete(self, key: str) -> None: ...
    async def close(self) -> None: ...


def partial_name(path: str) -> str:
    return path + ".partial"


class SftpDestination:
    """A directory reached over SFTP; `start` opens the SFTP session, `done` lets go of the
    connection (closes it, or leaves a shared one to its owner)."""

    def __init__(
        self,
        start: Callable[[], Awaitable[asyncssh.SFTPClient]],
        root: str,
        done: Callable[[], Awaitable[None]],
    ) -> None:
        self._start = start
        self._root = root.rstrip("/") or "/"
        self._done = done
        self._sftp: asyncssh.SFTPClient | None = None

    def _path(self, key: str) -> str:
        path = posixpath.normpath(posixpath.join(self._root, key))
        if not path.startswith(self._root + "/"):
            raise DestinationError(f"refused a key outside the destination: {key!r}")
        return path

    async def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = await self._start()
            except (asyncssh.Error, OSError) as e:
                raise DestinationError(f"cannot start SFTP: {e}") from e
        return self._sftp

    async def writer(self, key: str) -> ObjectWriter:
        sftp = await self._client()
        path = self._path(key)
        try:
            await sftp.makedirs(posixpath.dirname(path), exist_ok=True)
            # "wb" truncates what a killed writer of the same key left in the partial file.
            handle = await sftp.open(
                partial_name(path), "wb", asyncssh.SFTPAttrs(permissions=0o600)
            )
        except (asyncssh.SFTPError, OSError) as e:
            raise DestinationError(f"cannot write {path}: {_reason(e)}") from e
        return _SftpWriter(sftp, handle, path)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        sftp = await self._client()
        path = self._path(key)
        try:
            async with sftp.open(path, "rb", encoding=None) as handle:
                while chunk := await handle.read(READ_BYTES):
                    yield chunk if isinstance(chunk, bytes) else chunk.encode()
        except (asyncssh.SFTPError, OSError) as e:
            raise DestinationError(f"cannot read {path}: {_reason(e)}") from e

    async def delete(self, key: str) -> None:
        sftp = await self._client()
        path = self._path(key)
        for name in (path, partial_name(path)):
            try:
                await sftp.remove(name)
            except asyncssh.SFTPNoSuchFile:
                pass
            except (asyncssh.SFTPError, OSError) as e:
                raise DestinationError(f"cannot delete {name}: {_reason(e)}") from e
        # The backup's directory goes once empty; a non-empty one (other parts) stays.
        with contextlib.suppress(asyncssh.SFTPError, OSError):
            await sftp.rmdir(posixpath.dirname(path))

    async def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
        await self._done()


class _SftpWriter:
    def __init__(self, sftp: asyncssh.SFTPClient, handle: Any, path: str) -> None:
        self._sftp = sftp
        self._handle = handle
        self._path = path

    async def write(self, data: bytes) -> None:
        try:
            await self._handle.write(data)
        except (asyncssh.SFTPError, OSError) as e:
            raise DestinationError(f"cannot write {self._path}: {_reason(e)}") from e

    async def commit(self) -> None:
        try:
            await self._handle.fsync()
            await self._handle.close()
            await self._sftp.posix_rename(partial_name(self._path), self._path)
        except (asyncssh.SFTPError, OSError) as e:
            raise DestinationError(f"cannot store {self._path}: {_reason(e)}") from e

    async def abort(self) -> None:
        try:
            await self._handle.close()
            await self._sftp.remove(partial_name(self._path))
        except (asyncssh.SFTPError, OSError):
            pass


class S3Destination:
    """An S3-compatible bucket (boto3, its blocking calls in threads); `prefix` is prepended
    to every key."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self._prefix}/{key}" if self._prefix else key

    async def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self._client, method), **kwargs)
        except Exception as e:  # botocore raises many unrelated types; all are the store's
            raise DestinationError(f"{what}: {e}") from e

    async def _abort_leftovers(self, key: str) -> None:
        """Multipart uploads of `key` a killed writer left open (invisible, but stored)."""
        found = await self._call(
            f"cannot list uploads in {self._bucket}",
            "list_multipart_uploads",
            Bucket=self._bucket,
            Prefix=key,
        )
        for upload in found.get("Uploads", []):
            if upload["Key"] == key:
                await self._call(
                    f"cannot abort an upload of {key}",
                    "abort_multipart_upload",
                    Bucket=self._bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                )

    async def writer(self, key: str) -> ObjectWriter:
        full = self._key(key)
        await self._abort_leftovers(full)
        created = await self._call(
            f"cannot write {full} to {self._bucket}",
            "create_multipart_upload",
            Bucket=self._bucket,
            Key=full,
        )
        return _S3Writer(self, full, created["UploadId"])

    async def read(self, key: str) -> AsyncIterator[bytes]:
        full = self._key(key)
        got = await self._call(
            f"cannot read {full} from {self._bucket}", "get_object", Bucket=self._bucket, Key=full
        )
        body = got["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, READ_BYTES):
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        full = self._key(key)
        await self._abort_leftovers(full)
        await self._call(
            f"cannot delete {full} from {self._bucket}",
            "delete_object",
            Bucket=self._bucket,
            Key=full,
        )

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


class _S3Writer:
    def __init__(self, store: S3Destination, key: str, upload_id: str) -> None:
        self._store = store
        self._key = key
        self._upload_id = upload_id
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []

    async def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= S3_PART_BYTES:
            await self._send(bytes(self._buffer[:S3_PART_BYTES]))
            del self._buffer[:S3_PART_BYTES]

    async def _send(self, body: bytes) -> None:
        number = len(self._parts) + 1
        sent = await self._store._call(
            f"cannot upload part {number} of {self._key}",
            "upload_part",
            Bucket=self._store._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def commit(self) -> None:
        if self._buffer or not self._parts:
            await self._send(bytes(self._buffer))
            self._buffer.clear()
        await self._store._call(
            f"cannot store {self._key}",
            "complete_multipart_upload",
            Bucket=self._store._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    async def abort(self) -> None:
        with contextlib.suppress(DestinationError):
            await self._store._call(
                f"cannot abort {self._key}",
                "abort_multipart_upload",
                Bucket=self._store._bucket,
                Key=self._key,
                UploadId=self._upload_id,
            )


async def probe(destination: Destination) -> None:
    """Write, read back and delete a small object: "test connection" (DestinationError says
    what failed)."""
    key = f".odoofleet-probe-{secrets.token_hex(8)}"
    content = b"odoofleet probe"
    writer = await destination.writer(key)
    try:
        await writer.write(content)
        await writer.commit()
    except BaseException:
        await writer.abort()
        raise
    read = b"".join([chunk async for chunk in destination.read(key)])
    await destination.delete(key)
    if read != content:
        raise DestinationError("the probe object read back differs from what was written")


def _reason(error: Exception) -> str:
    return error.reason if isinstance(error, asyncssh.SFTPError) else str(error)
