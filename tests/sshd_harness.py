"""A real OpenSSH server on 127.0.0.1 for tests, whose sessions find the stand-in `docker`
first in PATH. Fixtures: `sshd` (a running SshdServer) and `ssh_runner` (an SshRunner).

Where /usr/sbin/sshd is not installed (or ODOOFLEET_TEST_SSHD=inprocess asks for it) the
server is asyncssh's instead (tests/sshd_inprocess.py), with the same interface; under CI a
missing sshd is an error, never a fallback."""

from __future__ import annotations

import collections
import contextlib
import getpass
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import pytest_asyncio

from odoofleet.sandbox.server import STANDIN_DIR, compose_binary, stop_standin_servers
from workers.ssh.runner import ServerConnectionInfo, SshRunner

SSHD = "/usr/sbin/sshd"
INPROCESS_SERVER = Path(__file__).with_name("sshd_inprocess.py")
DROPPED = "Dropped connections"


def use_inprocess_sshd() -> bool:
    """OpenSSH where it is installed, asyncssh's server where it is not or where
    ODOOFLEET_TEST_SSHD=inprocess asks for it (ODOOFLEET_TEST_SSHD=openssh: never)."""
    wanted = os.environ.get("ODOOFLEET_TEST_SSHD", "")
    if wanted in ("inprocess", "openssh"):
        return wanted == "inprocess"
    if Path(SSHD).exists():
        return False
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"{SSHD} is missing: CI runs the tests against OpenSSH")
    return True


# The ports tests' own servers listen on come from below the kernel's ephemeral range
# (32768-60999 by default): a port bind(0) hands out is one the kernel also hands the next
# outgoing connection (to PostgreSQL, NATS, an sshd), which could take it before the test's
# server binds it ("address already in use"). Instances take 20000 and up (api_fixtures.
# TEST_HOST_PORTS, saga_fixtures.free_host_ports, the sandbox's default range).
_LISTEN_PORTS = range(10000, 20000)
_handed_out: collections.deque[int] = collections.deque(maxlen=4000)


def free_port() -> int:
    """A loopback port nothing listens on, not handed out recently by this process."""
    while True:
        port = _LISTEN_PORTS[secrets.randbelow(len(_LISTEN_PORTS))]
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.append(port)
        return port


def wait_until(condition: Any, timeout: float = 10.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        time.sleep(0.02)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class SshdServer:
    """An sshd of this test's own: host key, client key, config, stand-in state and a base
    directory that plays /srv/odoofleet."""

    def __init__(
        self, base: Path, *, password_auth: bool = False, inprocess: bool | None = None
    ) -> None:
        self.base = base
        self.inprocess = use_inprocess_sshd() if inprocess is None else inprocess
        self.port = free_port()
        self.password_auth = password_auth
        self.state_dir = base / "standin-state"
        self.root = base / "srv-odoofleet"
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._process: subprocess.Popen[bytes] | None = None
        for folder in (self.base, self.state_dir, self.root):
            folder.mkdir(parents=True, exist_ok=True)
        authorized = self.client_key.export_public_key("openssh")
        (base / "authorized_keys").write_bytes(authorized)

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()

    @property
    def client_private_key(self) -> str:
        return self.client_key.export_private_key("openssh").decode()

    def connection_info(self, **changes: Any) -> ServerConnectionInfo:
        """Key login as root, host key pinned; pass `pinned_host_key=None` for first use."""
        fields: dict[str, Any] = {
            "server_id": str(uuid.uuid5(uuid.NAMESPACE_URL, str(self.base))),
            "host": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "auth_method": "key",
            "private_key": self.client_private_key,
            "pinned_host_key": self.host_key_line,
            "connect_timeout": 5.0,
        }
        fields.update(changes)
        return ServerConnectionInfo(**fields)

    def start(self) -> None:
        key_file = self.base / "ssh_host_ed25519_key"
        key_file.write_bytes(self.host_key.export_private_key("openssh"))
        key_file.chmod(0o600)
        config = self.base / "sshd_config"
        if self.inprocess:
            config.write_text(self._inprocess_config(key_file))
            argv = [sys.executable, str(INPROCESS_SERVER), str(config)]
        else:
            config.write_text(self._config(key_file))
            # sshd refuses to start without its privilege-separation directory.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
            argv = [SSHD, "-D", "-e", "-f", str(config)]
        log = (self.base / "sshd.log").open("ab")
        self._process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: stop() ends every session with it
        )
        log.close()
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not start: {self.log()}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.drop_connections()
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait()
            self._process = None
        stop_standin_servers(self.state_dir)

    def restart_with_new_host_key(self) -> None:
        """Same port, same client key, a freshly generated host key: a reinstalled server,
        or a man in the middle."""
        self.stop()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.start()

    def drop_connections(self) -> None:
        """End every open SSH connection, as a network failure or a reboot would. Each one is
        a child of the listener in a session of its own, so stopping the listener's process
        group does not reach it."""
        if self._process is None:
            return
        if self.inprocess:
            self._drop_inprocess_connections()
            return
        for pid in _children(self._process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def log(self) -> str:
        path = self.base / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- the stand-in docker -----------------------------------------------------------------

    def calls(self) -> list[dict[str, Any]]:
        """Every docker call so far: {"argv": [...], "cwd": ..., "ts": ...}."""
        path = self.state_dir / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def docker_argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def arm(self, *switches: str) -> None:
        """Make matching stand-in operations fail (names: odoofleet/sandbox/bin/docker)."""
        with (self.state_dir / "fail").open("a") as fail:
            fail.writelines(f"{switch}\n" for switch in switches)

    def disarm(self, *switches: str) -> None:
        path = self.state_dir / "fail"
        if path.exists():
            kept = [word for word in path.read_text().split() if word not in switches]
            path.write_text("".join(f"{word}\n" for word in kept))

    def override_container(self, name: str, **values: Any) -> None:
        """Force what docker shows for a container: RestartCount=3, OOMKilled=True, …"""
        folder = self.state_dir / "overrides"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.json"
        current = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**current, **values}))

    def container(self, name: str) -> dict[str, Any] | None:
        path = self.state_dir / "containers" / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def _drop_inprocess_connections(self) -> None:
        assert self._process is not None
        dropped = self.log().count(DROPPED)
        os.kill(self._process.pid, signal.SIGUSR1)
        wait_until(lambda: self.log().count(DROPPED) > dropped, message="connections dropped")

    def _inprocess_config(self, key_file: Path) -> str:
        """The asyncssh server's settings, its sessions' environment taken from the SetEnv
        line of `_config` (which a subclass may change)."""
        set_env = next(
            line for line in self._config(key_file).splitlines() if line.startswith("SetEnv ")
        )
        user = getpass.getuser()
        env = {"HOME": os.environ.get("HOME", "/root"), "USER": user, "LOGNAME": user}
        env.update(item.split("=", 1) for item in shlex.split(set_env)[1:])
        return json.dumps(
            {
                "port": self.port,
                "host_key": str(key_file),
                "authorized_keys": str(self.base / "authorized_keys"),
                "password_auth": self.password_auth,
                "log": str(self.base / "sshd.log"),
                "env": env,
            }
        )

    def _config(self, key_file: Path) -> str:
        # The stand-in first, then this interpreter (for its `#!/usr/bin/env python3`), then
        # the usual directories. SetEnv wins over sshd's default PATH.
        path = [STANDIN_DIR, Path(sys.executable).parent, "/usr/local/bin:/usr/bin:/bin"]
        environment = {
            "PATH": ":".join(map(str, path)),
            # bash sources ~/.bashrc for a command sent over SSH only when it is the first
            # shell (SHLVL becomes 1). Starting from 1 it becomes 2, which keeps the test
            # machine's own rc files (slow tool set-ups, a PATH of their own) out of sessions.
            "SHLVL": "1",
            "ODOOFLEET_STANDIN_STATE": str(self.state_dir),
            "ODOOFLEET_COMPOSE_BIN": str(compose_binary()),
        }
        set_env = " ".join(f'"{name}={value}"' for name, value in environment.items())
        return "\n".join(
            [
                f"Port {self.port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {key_file}",
                f"PidFile {self.base / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.base / 'authorized_keys'}",
                "PermitRootLogin yes",
                "PubkeyAuthentication yes",
                f"PasswordAuthentication {'yes' if self.password_auth else 'no'}",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "PrintMotd no",
                "MaxSessions 32",
                "MaxStartups 64",
                f"SetEnv {set_env}",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces.
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == parent:
                    found.append(int(entry.name))
    return found


def start_sshd(base: Path, *, password_auth: bool = False) -> SshdServer:
    server = SshdServer(base, password_auth=password_auth)
    server.start()
    return server


# Registered under their `name`: a module imports `sshd_fixture` and its tests ask for `sshd`,
# so no test parameter shadows an import.
@pytest.fixture(name="sshd")
def sshd_fixture(tmp_path: Path) -> Iterator[SshdServer]:
    """A running sshd of this test's own (password login allowed, root has none)."""
    server = start_sshd(tmp_path / "sshd", password_auth=True)
    yield server
    server.stop()


@pytest_asyncio.fixture(name="ssh_runner")
async def ssh_runner_fixture() -> AsyncIterator[SshRunner]:
    runner = SshRunner(command_timeout=60.0)
    yield runner
    await runner.close()
