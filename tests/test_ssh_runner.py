"""The SSH runner against a real OpenSSH server."""

from __future__ import annotations

import asyncio
import re
import stat
import time
from pathlib import Path

import asyncssh
import pytest
from sshd_harness import (  # noqa: F401
    STANDIN_DIR,
    SshdServer,
    free_port,
    ssh_runner_fixture,
    sshd_fixture,
)
from waiting import eventually

from workers.server.shell import cmd
from workers.ssh.errors import (
    AuthenticationFailed,
    CommandTimeout,
    HostKeyChanged,
    OutputTooLarge,
    ServerUnreachable,
)
from workers.ssh.hostkeys import fingerprint
from workers.ssh.runner import SshRunner


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob("pwned*"))


async def test_a_command_returns_its_exit_status_and_both_outputs(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    result = await ssh_runner.run(sshd.connection_info(), "printf out; printf err >&2; exit 3")

    assert (result.exit_status, result.stdout, result.stderr) == (3, "out", "err")
    assert not result.ok
    assert result.duration_ms >= 0


async def test_a_command_reading_its_input_gets_end_of_file(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    result = await ssh_runner.run(sshd.connection_info(), "cat; echo done", time_limit=10)

    assert (result.exit_status, result.stdout) == (0, "done\n")


async def test_a_command_past_its_time_limit_is_killed_and_raises(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as raised:
        await ssh_runner.run(sshd.connection_info(), "sleep 987.25", time_limit=0.5)

    assert time.monotonic() - started < 10
    assert raised.value.timeout == 0.5
    assert "0.5s" in str(raised.value)
    await eventually(lambda: not processes_with("sleep 987.25"), message="remote sleep killed")


async def test_a_hanging_docker_call_times_out_and_is_killed(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    sshd.arm("hang:version")

    with pytest.raises(CommandTimeout):
        await ssh_runner.run(sshd.connection_info(), "docker version", time_limit=1)

    marker = f"{STANDIN_DIR}/docker version"
    await eventually(lambda: not processes_with(marker), message="hanging stand-in killed")


async def test_first_use_returns_the_host_key_to_pin(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    host_key = await ssh_runner.connect(sshd.connection_info(pinned_host_key=None))

    assert host_key.line == sshd.host_key_line
    assert host_key.fingerprint == fingerprint(sshd.host_key_line)
    assert host_key.fingerprint.startswith("SHA256:")


async def test_a_changed_host_key_is_refused_and_nothing_runs(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    pinned = sshd.connection_info()
    old_key = sshd.host_key_line
    sshd.restart_with_new_host_key()

    with pytest.raises(HostKeyChanged) as raised:
        await ssh_runner.run(pinned, "docker version")

    assert raised.value.expected_fingerprint == fingerprint(old_key)
    assert raised.value.seen_fingerprint == fingerprint(sshd.host_key_line)
    assert fingerprint(old_key) in str(raised.value)
    assert sshd.calls() == []
    assert "Accepted publickey" not in sshd.log()


async def test_commands_reuse_one_connection(sshd: SshdServer, ssh_runner: SshRunner) -> None:
    info = sshd.connection_info()

    first = await ssh_runner.run(info, "echo $SSH_CLIENT")
    second = await ssh_runner.run(info, "echo $SSH_CLIENT")

    assert first.stdout == second.stdout  # the same client port: the same TCP connection
    assert sshd.log().count("Accepted publickey") == 1


async def test_a_dropped_connection_is_replaced(sshd: SshdServer, ssh_runner: SshRunner) -> None:
    info = sshd.connection_info()
    before = await ssh_runner.run(info, "echo $SSH_CLIENT")

    sshd.drop_connections()
    after = await ssh_runner.run(info, "echo $SSH_CLIENT")

    assert after.ok
    assert after.stdout != before.stdout


async def test_sessions_per_server_are_capped(sshd: SshdServer, ssh_runner: SshRunner) -> None:
    info = sshd.connection_info(max_ssh_sessions=2)
    await ssh_runner.connect(info)

    started = time.monotonic()
    results = await asyncio.gather(*(ssh_runner.run(info, "sleep 0.6") for _ in range(5)))

    assert all(result.ok for result in results)
    assert time.monotonic() - started >= 1.8  # three rounds of two at most


async def test_upload_replaces_a_file_atomically_with_its_mode(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    info = sshd.connection_info()
    target = sshd.root / "secrets" / "pg_password"
    target.parent.mkdir()
    target.write_text("old")
    old_inode = target.stat().st_ino

    await ssh_runner.upload(info, str(target), b"s3cret\n", 0o600)

    assert target.read_bytes() == b"s3cret\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != old_inode  # renamed into place, never rewritten in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["pg_password"]


async def test_upload_sets_the_exact_mode_whatever_the_umask(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    target = sshd.root / "compose.yaml"

    await ssh_runner.upload(sshd.connection_info(), str(target), b"services: {}\n", 0o644)

    assert stat.S_IMODE(target.stat().st_mode) == 0o644


async def test_shell_metacharacters_reach_docker_as_one_literal_argument(
    sshd: SshdServer, ssh_runner: SshRunner, tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    hostile = (
        f"$(touch {pwned}-1)`touch {pwned}-2`; touch {pwned}-3 && touch {pwned}-4 | "
        f"touch {pwned}-5\n touch {pwned}-6 'quoted' \"double\" \\ * ? ~ # & > {pwned}-7 <"
    )

    result = await ssh_runner.run(sshd.connection_info(), cmd("docker", "inspect", hostile))

    assert result.exit_status == 1  # the stand-in found no such object: it was asked, once
    assert sshd.docker_argvs() == [["docker", "inspect", hostile]]
    assert leftovers(tmp_path) == []


async def test_a_wrong_key_is_an_authentication_failure_that_shows_no_secret(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()

    with pytest.raises(AuthenticationFailed) as raised:
        await ssh_runner.run(sshd.connection_info(private_key=stranger), "true")

    assert "refused the private key" in str(raised.value)
    assert stranger.splitlines()[1] not in str(raised.value)


async def test_a_wrong_password_is_an_authentication_failure_that_shows_no_secret(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    password = "hunter2-correct-horse"
    info = sshd.connection_info(auth_method="password", private_key=None, password=password)

    with pytest.raises(AuthenticationFailed) as raised:
        await ssh_runner.run(info, "true")

    assert "refused the password" in str(raised.value)
    assert password not in str(raised.value)
    assert password not in repr(info)


async def test_an_unreadable_private_key_is_an_authentication_failure(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----"

    with pytest.raises(AuthenticationFailed) as raised:
        await ssh_runner.run(sshd.connection_info(private_key=garbage), "true")

    assert "bm90IGEga2V5" not in str(raised.value)


async def test_a_closed_port_is_unreachable(ssh_runner: SshRunner, sshd: SshdServer) -> None:
    info = sshd.connection_info(port=free_port())

    with pytest.raises(ServerUnreachable, match="connection refused"):
        await ssh_runner.run(info, "true")


async def test_an_unresolvable_host_is_unreachable(ssh_runner: SshRunner, sshd: SshdServer) -> None:
    info = sshd.connection_info(host="no-such-host.invalid", connect_timeout=3.0)

    with pytest.raises(ServerUnreachable, match=re.escape("no-such-host.invalid")):
        await ssh_runner.run(info, "true")


def test_connection_info_never_shows_its_credentials(sshd: SshdServer) -> None:
    info = sshd.connection_info()

    assert info.private_key is not None
    assert info.private_key.splitlines()[1] not in repr(info)


async def test_output_over_the_limit_stops_the_command_and_raises(
    sshd: SshdServer, tmp_path: Path
) -> None:
    runner = SshRunner(command_timeout=60.0, output_limit=64 * 1024)
    info = sshd.connection_info()
    marker = tmp_path / "still-writing"
    writer = f"touch {marker}; head -c 50000000 /dev/zero; rm {marker}"
    try:
        for command in [writer, f"({writer}) >&2"]:
            started = time.monotonic()
            with pytest.raises(OutputTooLarge, match="output over 65536 bytes"):
                await runner.run(info, command)
            assert time.monotonic() - started < 10
        # Nothing of it is kept, and the connection serves the next command.
        result = await runner.run(info, "head -c 65536 /dev/zero | tr '\\0' x")
    finally:
        await runner.close()
    assert (result.exit_status, len(result.stdout)) == (0, 65536)
    await eventually(lambda: not processes_with(str(marker)), message="the writers ended")


async def test_output_of_a_command_is_decoded_whole_across_chunks(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    # 105,000 three-byte characters: reads of 64 KiB end inside characters.
    loop = "i=0; while [ $i -lt 7000 ]; do printf '€€€€€€€€€€€€€€€'; i=$((i+1)); done"
    result = await ssh_runner.run(sshd.connection_info(), loop)
    assert result.stdout == "€" * 105000
