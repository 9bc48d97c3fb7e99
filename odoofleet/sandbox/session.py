"""One SSH session's command, run as OpenSSH runs it: `/bin/sh -c` in a session of its own,
the channel's data on its stdin (then end of file), its output back to the client as it comes,
then its exit status, and the whole process group killed when the client closes the channel
first (it gave up waiting: a time limit)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import asyncssh

_CHUNK = 65536


async def run_session(process: asyncssh.SSHServerProcess[bytes], env: dict[str, str]) -> None:
    shell = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        process.command or "true",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    # The three pipes asked for above, for the type checker.
    assert shell.stdin is not None
    assert shell.stdout is not None
    assert shell.stderr is not None
    feeding = asyncio.ensure_future(_feed(process.stdin, shell.stdin))
    finished = asyncio.ensure_future(
        _output_then_exit(shell, (shell.stdout, process.stdout), (shell.stderr, process.stderr))
    )
    closed = asyncio.ensure_future(process.wait_closed())
    try:
        await asyncio.wait({finished, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not finished.done():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
            with contextlib.suppress(OSError, asyncssh.Error):
                await finished
        closed.cancel()
        feeding.cancel()
    if process.is_closing():
        return
    process.exit(shell.returncode or 0)


async def _feed(channel: asyncssh.SSHReader[bytes], command: asyncio.StreamWriter) -> None:
    """What the client sends, to the command's stdin; the client's end of file closes it (a
    client that sends nothing still sends that, so a command reading stdin does not hang)."""
    with contextlib.suppress(OSError, asyncssh.Error):
        while chunk := await channel.read(_CHUNK):
            command.write(chunk)
            await command.drain()
        command.close()


async def _output_then_exit(
    shell: asyncio.subprocess.Process,
    *pipes: tuple[asyncio.StreamReader, asyncssh.SSHWriter[bytes]],
) -> None:
    """Each of the command's outputs to the client as it comes (a script that reports its
    steps one by one is read step by step), until both end and the command has exited."""

    async def copy(source: asyncio.StreamReader, sink: asyncssh.SSHWriter[bytes]) -> None:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()

    await asyncio.gather(*(copy(source, sink) for source, sink in pipes))
    await shell.wait()
