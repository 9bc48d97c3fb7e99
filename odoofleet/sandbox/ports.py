"""The host ports a sandbox hands out: a block of its own in odoofleet's range, claimed with a
lock every sandbox on this machine sees, and free when claimed. Without it two sandboxes (each
with its own database, so its own reservations) both start at the range's first port, and one
instance's readiness can pass against the other's process."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

from commands.defaults import DEFAULT_HOST_PORTS, HostPorts

BLOCK_SIZE = 100  # 50 instances, two ports each


def lock_dir() -> Path:
    """Shared by every user's sandboxes on this machine (sticky, like /tmp)."""
    folder = Path(tempfile.gettempdir()) / "odoofleet-sandbox-ports"
    folder.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):
        folder.chmod(0o1777)
    return folder


class PortBlock:
    """A claimed block; the claim lasts until `release` (or this process ends)."""

    def __init__(self, ports: HostPorts, lock_fd: int) -> None:
        self.ports = ports
        self._lock_fd: int | None = lock_fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = None


def claim_block(remembered: Path, locks: Path | None = None) -> PortBlock:
    """The block remembered in `remembered` if it can be had, else another free one, which is
    then remembered (so a restarted sandbox keeps handing out the same ports)."""
    folder = locks or lock_dir()
    blocks = list(range(DEFAULT_HOST_PORTS.first, DEFAULT_HOST_PORTS.last + 1, BLOCK_SIZE))
    random.shuffle(blocks)
    if remembered.exists():
        blocks.insert(0, int(remembered.read_text()))
    for first in blocks:
        block = _try_block(folder, first)
        if block is not None:
            remembered.write_text(f"{first}\n")
            return block
    raise RuntimeError(
        f"no free block of {BLOCK_SIZE} host ports in {DEFAULT_HOST_PORTS.first}-"
        f"{DEFAULT_HOST_PORTS.last}: every one is claimed by another sandbox or in use"
    )


def _try_block(folder: Path, first: int) -> PortBlock | None:
    last = min(first + BLOCK_SIZE - 1, DEFAULT_HOST_PORTS.last)
    fd = os.open(folder / f"{first}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not all(bindable(port) for port in range(first, last + 1)):
        os.close(fd)
        return None
    return PortBlock(HostPorts(first, last), fd)


def bindable(port: int) -> bool:
    """Free on the loopback and on every address (Docker publishes on either). Only bound,
    never listened on: no connection can reach the probe."""
    for address in ("127.0.0.1", "0.0.0.0"):  # noqa: S104
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True
