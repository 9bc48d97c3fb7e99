"""The simulated servers of bench/health.py: real sshd of tests/sshd_harness.py whose
`docker` is a shell script answering `stats` and `inspect` from canned files, and one asyncio
process answering every instance's /web/health (`python -m bench.health_servers PORTS_JSON`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sshd_harness import STANDIN_DIR, SshdServer, wait_until  # noqa: E402

LIMIT = 2 * 2**30
DOCKER = """#!/bin/sh
# The bench's docker: canned answers to the two commands health_command sends; inspect
# prints the files of the names that have one, as Docker prints the containers that exist.
case "$1" in
stats) exec cat "$ODOOFLEET_STANDIN_STATE/stats.jsonl" ;;
inspect) shift; while [ "${1#-}" != "$1" ]; do shift 2; done  # flags, each with a value
  cd "$ODOOFLEET_STANDIN_STATE/inspect" && exec cat "$@" 2>/dev/null ;;
esac
exit 1
"""
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n"
    b'Connection: close\r\n\r\n{"status": "pass"}'
)


class BenchSshd(SshdServer):
    """The harness's sshd, its sessions finding the bench's docker first in PATH."""

    def _config(self, key_file: Path) -> str:
        folder = self.base / "bin"
        folder.mkdir(exist_ok=True)
        (folder / "docker").write_text(DOCKER)
        (folder / "docker").chmod(0o755)
        return super()._config(key_file).replace(str(STANDIN_DIR), str(folder), 1)

    def containers(self, names: list[str], exited: frozenset[str] = frozenset()) -> None:
        """What `docker inspect` and `docker stats` answer for the app containers."""
        folder = self.state_dir / "inspect"
        folder.mkdir(exist_ok=True)
        stats = []
        for name in names:
            status = "exited" if name in exited else "running"
            state = {"Status": status, "OOMKilled": False, "ExitCode": 0}
            state["Health"] = {"Status": "healthy"}
            inspect = {"name": f"/{name}", "state": state, "restartCount": 0, "memoryLimit": LIMIT}
            (folder / name).write_text(json.dumps(inspect, separators=(",", ":")) + "\n")
            if status == "running":
                usage = {"Name": name, "CPUPerc": "1.50%", "MemUsage": "256.0MiB / 2.00GiB"}
                stats.append(json.dumps(usage, separators=(",", ":")))
        (self.state_dir / "stats.jsonl").write_text("".join(f"{line}\n" for line in stats))


async def serve_ports(count: int, listing: Path) -> None:
    """Answer /web/health on `count` ports the kernel picks (written to `listing` once all
    listen), as the instances' Odoo would. Ports chosen beforehand could be taken by any
    outgoing connection before they are bound, which thousands of them made likely."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # a readiness check
            await reader.readuntil(b"\r\n\r\n")
            writer.write(RESPONSE)
            await writer.drain()
        writer.close()

    servers = [await asyncio.start_server(answer, "127.0.0.1", 0) for _ in range(count)]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    written = listing.with_suffix(".tmp")
    written.write_text(json.dumps(ports))
    written.rename(listing)
    await asyncio.gather(*(server.serve_forever() for server in servers))


def listen(count: int, base: Path) -> tuple[subprocess.Popen[bytes], list[int]]:
    """The port server, and the ports it answers on."""
    listing = base / "ports.json"
    argv = [sys.executable, "-m", "bench.health_servers", str(count), str(listing)]
    listener = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)

    def ready() -> bool:
        if listener.poll() is not None:
            raise RuntimeError("the port server ended; see its error above")
        return listing.exists()

    wait_until(ready, timeout=120, message="health ports")
    return listener, json.loads(listing.read_text())


if __name__ == "__main__":
    asyncio.run(serve_ports(int(sys.argv[1]), Path(sys.argv[2])))
