"""One SSH session's command, run as OpenSSH runs it: `/bin/sh -c` in a session of its own,
stdin at end of file, output and exit status back to the client, and the whole process group
killed when the client closes the channel first (it gave up waiting: a time limit)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import asyncssh


async def run_session(process: asyncssh.SSHServerProcess[bytes], env: dict[str, str]) -> None:
    shell = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        process.command or "true",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    finished = asyncio.ensure_future(shell.communicate())
    closed = asyncio.ensure_future(process.wait_closed())
    try:
        await asyncio.wait({finished, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not finished.done():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
            await finished
        closed.cancel()
    if process.is_closing():
        return
    out, err = finished.result()
    process.stdout.write(out)
    process.stderr.write(err)
    process.exit(shell.returncode or 0)
