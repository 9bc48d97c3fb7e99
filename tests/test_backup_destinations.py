"""Backup destinations against real servers: an S3-compatible server (moto's standalone
server over HTTP) and OpenSSH's sshd over SFTP. A part is stored sealed and read back whole;
a writer that died mid-part leaves nothing under the part's key, and the next writer of the
key clears what it left; a damaged part is refused; a destination's own error is reported."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backup_servers import ACCESS_KEY, SECRET_KEY, S3Server, s3_server_fixture  # noqa: F401
from sshd_harness import SshdServer

from events.backup import BackupPart
from workers.backups.destinations import Destination, DestinationError, probe
from workers.backups.opening import DestinationSpec, open_destination
from workers.backups.parts import open_part, part_key, store_part
from workers.server.remote import StepError

KEY = os.urandom(32)


def s3_spec(server: S3Server, bucket: str, prefix: str = "fleet") -> DestinationSpec:
    return DestinationSpec(
        destination_id="d-s3",
        kind="s3",
        settings={
            "bucket": bucket,
            "region": "us-east-1",
            "endpointUrl": server.url,
            "prefix": prefix,
            "accessKeyId": ACCESS_KEY,
        },
        credentials={"secretAccessKey": SECRET_KEY},
    )


def sftp_spec(sshd: SshdServer, path: Path, host_key: str | None = None) -> DestinationSpec:
    return DestinationSpec(
        destination_id="d-sftp",
        kind="sftp",
        settings={
            "host": "127.0.0.1",
            "port": str(sshd.port),
            "user": "root",
            "path": str(path),
            "hostKey": host_key or sshd.host_key_line,
        },
        credentials={"privateKey": sshd.client_private_key},
    )


async def opened(spec: DestinationSpec) -> Destination:
    return await open_destination(spec, local_sftp=None, policy=None, connect_timeout=5.0)


async def chunks(data: bytes, size: int = 300_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_back(destination: Destination, part: BackupPart) -> bytes:
    return b"".join([chunk async for chunk in open_part(destination, part, KEY)])


async def test_a_part_of_several_s3_upload_parts_is_stored_sealed_and_read_back_whole(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.bucket("backups")
    destination = await opened(s3_spec(s3_server, bucket))
    data = os.urandom(19 * 2**20)  # three multipart upload parts of 8 MiB
    key = part_key("i-1", "b-1", "database")

    part = await store_part(destination, key, "database", KEY, chunks(data))

    assert (part.size, part.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert s3_server.keys(bucket) == [f"fleet/{key}"]
    stored = s3_server.client().get_object(Bucket=bucket, Key=f"fleet/{key}")["Body"].read()
    assert len(stored) == part.stored_size
    assert data[:4096] not in stored
    assert await read_back(destination, part) == data
    await destination.close()


async def test_an_s3_part_whose_writer_died_is_invisible_and_cleared_by_the_next_writer(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.bucket("backups")
    destination = await opened(s3_spec(s3_server, bucket))
    key = part_key("i-1", "b-1", "filestore")
    dying = await destination.writer(key)
    await dying.write(os.urandom(9 * 2**20))  # one upload part sent, then the worker dies
    assert s3_server.keys(bucket) == []
    assert s3_server.open_uploads(bucket) == [f"fleet/{key}"]

    part = await store_part(destination, key, "filestore", KEY, chunks(b"the filestore"))

    assert s3_server.keys(bucket) == [f"fleet/{key}"]
    assert s3_server.open_uploads(bucket) == []
    assert await read_back(destination, part) == b"the filestore"
    await destination.delete(key)
    assert s3_server.keys(bucket) == []


async def test_an_s3_destination_that_fails_its_probe_says_why(s3_server: S3Server) -> None:
    destination = await opened(s3_spec(s3_server, "no-such-bucket"))
    with pytest.raises(DestinationError, match="NoSuchBucket"):
        await probe(destination)
    there = s3_server.bucket("there")
    await probe(await opened(s3_spec(s3_server, there)))
    assert s3_server.keys(there) == []


async def test_an_sftp_part_is_stored_under_its_key_only_once_whole(
    sshd: SshdServer, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    destination = await opened(sftp_spec(sshd, root))
    key = part_key("i-1", "b-1", "database")
    dying = await destination.writer(key)
    await dying.write(b"half a dump")  # the worker dies here: only the partial file exists
    assert sorted(p.name for p in (root / "i-1" / "b-1").iterdir()) == ["database.dump.ofb.partial"]

    data = os.urandom(3 * 2**20 + 17)
    part = await store_part(destination, key, "database", KEY, chunks(data))

    assert sorted(p.name for p in (root / "i-1" / "b-1").iterdir()) == ["database.dump.ofb"]
    assert (root / key).stat().st_size == part.stored_size
    assert await read_back(destination, part) == data
    await probe(destination)
    await destination.delete(key)
    assert not (root / "i-1" / "b-1").exists()
    await destination.close()


async def test_an_sftp_destination_presenting_another_host_key_is_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    with pytest.raises(DestinationError, match="host key"):
        await opened(sftp_spec(sshd, tmp_path, host_key=other.strip()))


async def test_a_part_altered_at_the_destination_is_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    destination = await opened(sftp_spec(sshd, root))
    key = part_key("i-1", "b-1", "database")
    part = await store_part(destination, key, "database", KEY, chunks(os.urandom(2**20 + 5)))
    stored = bytearray((root / key).read_bytes())
    stored[100] ^= 1
    (root / key).write_bytes(bytes(stored))

    with pytest.raises(StepError, match="database part is damaged"):
        await read_back(destination, part)
    # Cut at a chunk boundary: every chunk left authenticates, but the last one is missing.
    (root / key).write_bytes(bytes(stored[: 4 + 4 + 12 + 2**20 + 16]))
    with pytest.raises(StepError, match=r"cut short|damaged"):
        await read_back(destination, part)
    await destination.close()
