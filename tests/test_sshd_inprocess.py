"""The asyncssh server tests fall back on where OpenSSH's sshd is not installed keeps
SshdServer's promises: pinned host key, key login only (passwords refused), the stand-in docker
in PATH, SFTP uploads, dropped connections replaced, a new host key refused."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from sshd_harness import SshdServer, ssh_runner_fixture  # noqa: F401

from workers.ssh.errors import AuthenticationFailed, HostKeyChanged
from workers.ssh.hostkeys import fingerprint
from workers.ssh.runner import SshRunner


@pytest.fixture
def asyncssh_sshd(tmp_path: Path) -> Iterator[SshdServer]:
    server = SshdServer(tmp_path / "sshd", password_auth=True, inprocess=True)
    server.start()
    yield server
    server.stop()


async def test_commands_run_with_the_standin_docker_first_in_path(
    asyncssh_sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    info = asyncssh_sshd.connection_info()

    result = await ssh_runner.run(info, "docker version --format '{{.Server.Version}}'; exit 3")

    assert (result.exit_status, result.stdout) == (3, "27.3.1\n")
    assert asyncssh_sshd.docker_argvs() == [
        ["docker", "version", "--format", "{{.Server.Version}}"]
    ]
    assert asyncssh_sshd.log().count("Accepted publickey") == 1


async def test_first_use_shows_the_host_key_and_uploads_land_with_their_mode(
    asyncssh_sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    info = asyncssh_sshd.connection_info(pinned_host_key=None)
    target = asyncssh_sshd.root / "secret"

    host_key = await ssh_runner.connect(info)
    await ssh_runner.upload(asyncssh_sshd.connection_info(), str(target), b"s3cret\n", 0o600)

    assert host_key.fingerprint == fingerprint(asyncssh_sshd.host_key_line)
    assert target.read_bytes() == b"s3cret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_a_password_and_a_stranger_key_are_refused(
    asyncssh_sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    by_password = asyncssh_sshd.connection_info(
        auth_method="password", private_key=None, password="root"
    )

    with pytest.raises(AuthenticationFailed):
        await ssh_runner.run(asyncssh_sshd.connection_info(private_key=stranger), "true")
    with pytest.raises(AuthenticationFailed):
        await ssh_runner.run(by_password, "true")
    assert "Accepted publickey" not in asyncssh_sshd.log()


async def test_a_dropped_connection_is_replaced_and_a_new_host_key_refused(
    asyncssh_sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    info = asyncssh_sshd.connection_info()
    before = await ssh_runner.run(info, "echo $SSH_CLIENT")

    asyncssh_sshd.drop_connections()
    after = await ssh_runner.run(info, "echo $SSH_CLIENT")
    asyncssh_sshd.restart_with_new_host_key()

    assert after.ok
    assert after.stdout != before.stdout
    with pytest.raises(HostKeyChanged):
        await ssh_runner.run(info, "true")


async def test_a_command_reads_what_the_client_sends_and_its_output_comes_as_it_goes(
    asyncssh_sshd: SshdServer, ssh_runner: SshRunner, tmp_path: Path
) -> None:
    """As with OpenSSH: files travel to a command on its stdin (workers/server/payload.py),
    and a script reporting its steps is read step by step (workers/server/step_report.py)."""
    go_on = tmp_path / "go-on"
    seen_before_the_end: list[bytes] = []

    async def first_line(chunk: bytes) -> None:
        if not seen_before_the_end:
            seen_before_the_end.append(chunk)
            go_on.touch()  # the command waits for this before it ends

    result = await ssh_runner.run(
        asyncssh_sshd.connection_info(),
        f"head -c 5; echo; while [ ! -e {go_on} ]; do sleep 0.01; done; cat",
        stdin=b"hello, world",
        on_stdout=first_line,
        time_limit=10,
    )

    assert (result.exit_status, result.stdout) == (0, "hello\n, world")
    assert seen_before_the_end[0].startswith(b"hello")
