"""An S3-compatible server for the backup tests: moto's standalone server (real HTTP, the
S3 API as boto3 speaks it), started by the tests on a free loopback port."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer
from sshd_harness import free_port

ACCESS_KEY = "AKIAODOOFLEETTEST"
SECRET_KEY = "s3-secret-key-odoofleet-test-0123456789"


class S3Server:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self, name: str) -> str:
        """A new bucket named `name` and a unique suffix (moto keeps its buckets in the
        process, across servers)."""
        unique = f"{name}-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=unique)
        return unique

    def keys(self, bucket: str) -> list[str]:
        found = self.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(item["Key"] for item in found)

    def open_uploads(self, bucket: str) -> list[str]:
        found = self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted(item["Key"] for item in found)


@pytest.fixture(name="s3_server")
def s3_server_fixture() -> Iterator[S3Server]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(port)
    finally:
        server.stop()
