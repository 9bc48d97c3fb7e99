"""A command on a server whose standard output (a dump) or standard input (a restore) is a
stream of bytes through the control plane: read and written in chunks with SSH flow control,
so the server waits for us and our memory holds a few chunks, whatever the size."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import asyncssh

from workers.server.remote import StepError
from workers.server.shell import cmd
from workers.ssh.connection import ServerConnectionInfo
from workers.ssh.errors import ServerUnreachable
from workers.ssh.runner import KILL_GRACE_SECONDS, SshRunner

READ_BYTES: Final = 1 << 20
_STDERR_LIMIT: Final = 16 * 1024


def _wrapped(command: str, time_limit: float) -> str:
    # As SshRunner.run: the server ends the command itself (sshd does not pass signals on).
    return cmd("timeout", "-k", KILL_GRACE_SECONDS, f"{time_limit:g}", "sh", "-c", command)


async def _tail(reader: asyncssh.SSHReader[bytes]) -> bytes:
    """The end of what `reader` gives, read to its end (the rest is dropped as it comes)."""
    kept = bytearray()
    while chunk := await reader.read(READ_BYTES):
        kept = (kept + chunk)[-_STDERR_LIMIT:]
    return bytes(kept)


def _failure(what: str, status: int | None, stderr: bytes) -> StepError:
    text = stderr.decode("utf-8", "replace").strip()[-600:]
    return StepError(f"{what} failed (exit status {status}): {text or 'no message'}")


async def stream_out(
    runner: SshRunner,
    server: ServerConnectionInfo,
    command: str,
    *,
    what: str,
    time_limit: float,
) -> AsyncIterator[bytes]:
    """The command's standard output in chunks; StepError once it exits non-zero."""
    try:
        process = await runner.open_process(server, _wrapped(command, time_limit), stdin=False)
    except asyncssh.Error as e:
        raise ServerUnreachable(f"cannot run {what} on {server.address}: {e}") from e
    errors = asyncio.create_task(_tail(process.stderr))
    try:
        while chunk := await process.stdout.read(READ_BYTES):
            yield chunk
        stderr = await errors
        await process.wait_closed()
    except (asyncssh.Error, OSError) as e:
        raise ServerUnreachable(f"connection to {server.address} lost during {what}: {e}") from e
    finally:
        if not errors.done():
            errors.cancel()
            process.close()
    if process.returncode != 0:
        raise _failure(what, process.returncode, stderr)


async def stream_in(
    runner: SshRunner,
    server: ServerConnectionInfo,
    command: str,
    chunks: AsyncIterator[bytes],
    *,
    what: str,
    time_limit: float,
) -> str:
    """Feed `chunks` to the command's standard input; its output (the end of it) once it
    exited zero, StepError otherwise."""
    try:
        process = await runner.open_process(server, _wrapped(command, time_limit), stdin=True)
    except asyncssh.Error as e:
        raise ServerUnreachable(f"cannot run {what} on {server.address}: {e}") from e
    errors = asyncio.create_task(_tail(process.stderr))
    output = asyncio.create_task(_tail(process.stdout))
    try:
        async for chunk in read_ahead(chunks):
            process.stdin.write(chunk)
            await process.stdin.drain()
        process.stdin.write_eof()
        stderr, stdout = await errors, await output
        await process.wait_closed()
    except (asyncssh.Error, BrokenPipeError, ConnectionError) as e:
        stderr = await _settled(errors)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait_closed(), 5)
        raise _failure(what, process.returncode, stderr or str(e).encode()) from e
    finally:
        for task in (errors, output):
            if not task.done():
                task.cancel()
        process.close()
    if process.returncode != 0:
        raise _failure(what, process.returncode, stderr)
    return (stdout + stderr).decode("utf-8", "replace").strip()[-600:]


async def read_ahead(chunks: AsyncIterator[bytes], depth: int = 4) -> AsyncIterator[bytes]:
    """`chunks`, read up to `depth` ahead of the consumer: reading the source (a destination)
    and writing to the server overlap instead of taking turns."""
    queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(depth)

    async def fill() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as e:  # handed to the consumer, raised there
            await queue.put(e)
            return
        await queue.put(None)

    filling = asyncio.create_task(fill())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        filling.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await filling


async def _settled(task: asyncio.Task[bytes]) -> bytes:
    try:
        return await asyncio.wait_for(task, 5)
    except (TimeoutError, asyncio.CancelledError, asyncssh.Error):
        return b""


async def stream_through(
    runner: SshRunner,
    server: ServerConnectionInfo,
    command: str,
    chunks: AsyncIterator[bytes],
    *,
    what: str,
    time_limit: float,
) -> AsyncIterator[bytes]:
    """Feed `chunks` to the command's standard input while its standard output comes back
    in chunks (a filter on the server: `pg_restore -f -`); StepError once it exits non-zero."""
    try:
        process = await runner.open_process(server, _wrapped(command, time_limit), stdin=True)
    except asyncssh.Error as e:
        raise ServerUnreachable(f"cannot run {what} on {server.address}: {e}") from e
    errors = asyncio.create_task(_tail(process.stderr))

    async def feed() -> None:
        async for chunk in read_ahead(chunks):
            process.stdin.write(chunk)
            await process.stdin.drain()
        process.stdin.write_eof()

    feeding = asyncio.create_task(feed())
    try:
        while chunk := await process.stdout.read(READ_BYTES):
            yield chunk
        await feeding
        stderr = await errors
        await process.wait_closed()
    finally:
        for task in (feeding, errors):
            if not task.done():
                task.cancel()
        process.close()
    if process.returncode != 0:
        raise _failure(what, process.returncode, stderr)
