"""Two sandboxes on one machine never hand out the same host port: each claims a block of its
own, and the stand-in fails a start whose port another process holds, as Docker does."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from sshd_harness import SshdServer, free_port, port_open, ssh_runner_fixture, sshd_fixture  # noqa: F401
from test_standin_docker import Server, make_spec

from odoofleet.sandbox.ports import bindable
from odoofleet.sandbox.server import SandboxServer
from workers.server.commands import app_up_command, container_status_command, db_up_command
from workers.ssh.runner import SshRunner


def ports_of(sandbox: SandboxServer) -> set[int]:
    return set(range(sandbox.host_ports.first, sandbox.host_ports.last + 1))


async def test_two_sandboxes_at_once_hand_out_disjoint_free_ports(tmp_path: Path) -> None:
    first, second = SandboxServer(tmp_path / "a"), SandboxServer(tmp_path / "b")
    await first.start()
    await second.start()
    try:
        assert not ports_of(first) & ports_of(second)
        assert len(ports_of(first)) == len(ports_of(second)) == 100
        assert all(bindable(port) for port in ports_of(first) | ports_of(second))
    finally:
        await first.stop()
        await second.stop()


async def test_a_restarted_sandbox_keeps_its_block_unless_another_holds_it(
    tmp_path: Path,
) -> None:
    sandbox = SandboxServer(tmp_path / "a")
    await sandbox.start()
    block = sandbox.host_ports
    shutil.copytree(tmp_path / "a", tmp_path / "copy")  # remembers the same block
    (tmp_path / "copy" / "sandbox" / "port").unlink()  # the first one's SSH port is taken
    copy = SandboxServer(tmp_path / "copy")
    await copy.start()
    try:
        assert copy.host_ports != block
    finally:
        await copy.stop()
        await sandbox.stop()

    again = SandboxServer(tmp_path / "a")
    await again.start()
    try:
        assert again.host_ports == block
    finally:
        await again.stop()


async def test_a_block_with_a_port_in_use_is_not_claimed(tmp_path: Path) -> None:
    sandbox = SandboxServer(tmp_path / "a")
    await sandbox.start()
    taken = sandbox.host_ports.first + 7
    await sandbox.stop()
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", taken))
        stranger.listen()
        again = SandboxServer(tmp_path / "a")
        await again.start()
        try:
            assert taken not in ports_of(again)
        finally:
            await again.stop()


async def test_an_app_whose_host_port_is_taken_fails_to_start_like_docker(
    sshd: SshdServer, ssh_runner: SshRunner
) -> None:
    spec = make_spec(http_port_host=free_port(), longpolling_port_host=free_port())
    server = Server(sshd, ssh_runner, spec)
    await server.lay_out()
    await server.ok(db_up_command(server.layout))
    with socket.socket() as stranger:
        stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        stranger.bind(("127.0.0.1", spec.http_port_host))
        stranger.listen()

        up = await server.run(app_up_command(server.layout, "blue"))

        assert up.exit_status == 1
        assert f"127.0.0.1:{spec.http_port_host}: bind: address already in use" in up.stderr
        status = await server.ok(container_status_command(server.layout, "blue"))
        assert status.stdout.startswith("created")
        assert not port_open(spec.longpolling_port_host)  # nothing half-published

    await server.ok(app_up_command(server.layout, "blue"))  # the port is free again
    assert port_open(spec.http_port_host)
    assert port_open(spec.longpolling_port_host)
