"""Files a command carries on its standard input, as one tar archive: no upload round trip
of their own, and nothing they hold on a command line (which `ps` and the logs show).

The command begins with `unpack_command`, which unpacks the archive into a private temporary
directory (`$work`, removed when the command exits); each file is then put in place by the
command `install` returned for it, at the point of the script where its directory exists.
"""

from __future__ import annotations

import io
import tarfile
from typing import Final

from workers.server.shell import cmd, script

# What installing its files may add to a command's time limit (unpacked, copied, renamed):
# a limit meant for `docker compose up` is not cut into by them on a loaded server.
INSTALL_SECONDS: Final = 30.0
# The temporary directory of the running command; exported, so that the `sh -c` of a
# `flock` or a `timeout` inside the command sees it too.
WORK: Final = '"$work"'


class Payload:
    def __init__(self) -> None:
        self._files: list[bytes] = []

    def install(self, path: str, content: bytes, mode: int) -> str:
        """The command that puts `content` at `path` with exactly `mode`, atomically as an
        upload did: copied next to it (mode narrowed to the owner's until set), then renamed
        over it, so a reader sees the old file or the new one, never half."""
        if not path.startswith("/"):
            raise ValueError(f"an installed path must be absolute: {path!r}")
        source = f"{WORK}/{len(self._files)}"
        self._files.append(content)
        # `$$` (this shell's pid) keeps two commands installing the same file apart.
        temporary = f"{cmd(path)}.$$.tmp"
        return script(
            f"cp {source} {temporary}",
            f"chmod {mode:o} {temporary}",
            f"mv -f {temporary} {cmd(path)}",
        )

    def __len__(self) -> int:
        return len(self._files)

    def archive(self) -> bytes:
        """The files, named by their index, each readable by its owner only."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for index, content in enumerate(self._files):
                member = tarfile.TarInfo(str(index))
                member.size, member.mode = len(content), 0o600
                tar.addfile(member, io.BytesIO(content))
        return buffer.getvalue()


def unpack_command() -> str:
    """The start of a command that carries a payload: the archive on standard input unpacked
    into `$work` (mode 0700), which is removed however the command ends; then standard input
    is /dev/null again, so nothing later waits on it."""
    return "; ".join(
        [
            "work=$(mktemp -d) || exit 1",
            "export work",
            f"trap {cmd('rm -rf ' + WORK)} EXIT",
            # Signals end the script through `exit`, so the EXIT trap still cleans up.
            "trap 'exit 143' HUP INT TERM PIPE",
            f"tar -xf - -C {WORK} --no-same-owner || exit 1",
            "exec </dev/null",
        ]
    )


def carrying(payload: Payload, command: str) -> str:
    """`command` run after its payload is unpacked (as is when it carries none)."""
    return f"{unpack_command()}; {command}" if payload else command
