"""The SSH runner's public channels the backup modules and the Odoo tunnel use, against a real
OpenSSH server: a streamed process, an SFTP session and a TCP stream on the runner's one
connection per server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sshd_harness import (  # noqa: F401
    SshdServer,
    ssh_runner_fixture,
    sshd_fixture,
)

from workers.ssh.network_policy import NetworkPolicy
from workers.ssh.runner import SshRunner


async def test_a_process_streams_what_it_is_given_back_as_bytes(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, not text: no decoding on the way

    process = await ssh_runner.open_process(sshd.connection_info(), "cat", stdin=True)
    process.stdin.write(payload)
    process.stdin.write_eof()
    echoed = await process.stdout.read()
    await process.wait()

    assert (echoed, process.exit_status) == (payload, 0)


async def test_a_process_without_input_reads_end_of_file(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    process = await ssh_runner.open_process(sshd.connection_info(), "wc -c", stdin=False)

    assert (await process.stdout.read()).strip() == b"0"


async def test_an_sftp_session_reads_a_file_on_the_server(
    sshd: SshdServer, ssh_runner: SshRunner, tmp_path: Path
) -> None:
    written = tmp_path / "part"
    written.write_bytes(b"sealed bytes")

    sftp = await ssh_runner.open_sftp(sshd.connection_info())
    async with sftp, sftp.open(str(written), "rb") as remote:
        read = await remote.read()

    assert read == b"sealed bytes"


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_tcp_stream_reaches_a_port_as_the_server_sees_it(
    sshd: SshdServer, ssh_runner: SshRunner, echo_port: int
) -> None:
    reader, writer = await ssh_runner.open_tcp(sshd.connection_info(), "127.0.0.1", echo_port)
    writer.write(b"hello\n")

    assert await reader.read() == b"echo:hello\n"
    writer.close()


def test_the_runner_shows_the_policy_it_dials_by() -> None:
    policy = NetworkPolicy()

    assert SshRunner(policy=policy).policy is policy
    assert SshRunner().policy is None
