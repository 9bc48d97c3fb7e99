"""The SSH runner: one reused connection per server, host-key pinning, capped sessions, SFTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import posixpath
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import asyncssh
import msgspec

from workers.server.shell import cmd
from workers.ssh.connection import Connection, open_connection
from workers.ssh.connection import ServerConnectionInfo as ServerConnectionInfo
from workers.ssh.errors import CommandTimeout, OutputTooLarge, ServerUnreachable, TransferFailed
from workers.ssh.hostkeys import HostKey
from workers.ssh.network_policy import NetworkPolicy

KILL_GRACE_SECONDS = 5
READ_CHUNK_BYTES = 64 * 1024
DEFAULT_OUTPUT_LIMIT = 1 << 20  # settings.ssh_output_limit
# `timeout` exits 124 after TERM, or 137 (128 + KILL) when the command ignored TERM.
TIMEOUT_STATUSES = (124, 137)
_Channel = TypeVar("_Channel")

log = logging.getLogger(__name__)


class CommandResult(msgspec.Struct, frozen=True):
    exit_status: int
    stdout: str
    stderr: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class SshRunner:
    """Runs commands and uploads files on servers, reusing one connection per server id.

    Within this process at most `max_ssh_sessions` commands or uploads run at once per server.
    """

    def __init__(
        self,
        *,
        command_timeout: float = 300.0,
        keepalive_interval: float = 15.0,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        policy: NetworkPolicy | None = None,
    ):
        """`policy` says which addresses may be dialled; None dials any (tools and tests
        that reach their own sshd). Every worker process passes the settings' policy."""
        self._command_timeout = command_timeout
        self._keepalive_interval = keepalive_interval
        self._output_limit = output_limit
        self._policy = policy
        self._connections: dict[str, Connection] = {}
        self._connect_locks: dict[str, asyncio.Lock] = {}
        self._sessions: dict[str, tuple[int, asyncio.Semaphore]] = {}

    async def connect(self, server: ServerConnectionInfo) -> HostKey:
        """Make sure a connection is open; return the host key the server presented.

        With no pinned key this is trust on first use: the caller records the returned key.
        """
        return (await self._connection(server)).host_key

    async def run(
        self,
        server: ServerConnectionInfo,
        command: str,
        *,
        time_limit: float | None = None,
        output_limit: int | None = None,
        stdin: bytes = b"",
        on_stdout: Callable[[bytes], Awaitable[float | None]] | None = None,
        first_wait: float | None = None,
    ) -> CommandResult:
        """Run one command line; a non-zero exit status is returned, not raised.

        `stdin` is what the command reads on its standard input, then EOF: how a command
        carries files (workers/server/payload.py) without a round trip of their own, and
        without putting what they hold on a command line.

        `on_stdout` sees each chunk of stdout as it arrives (a command of several steps
        reports each as it ends: workers/server/step_report.py). What it returns, unless
        None, is how long the command may still take from now: the client's backstop (see
        below) moves with it, so each step of such a command has its own; `first_wait` is
        the first step's (by default, the time limit).

        The server enforces the time limit itself with coreutils `timeout`, which kills the
        command's whole process group: sshd does not pass signals from the client to a root
        session, and closing the channel would leave the command running (and holding its
        flock) unobserved.

        At most `output_limit` bytes of stdout, and as many of stderr, are read: a server
        answering more (a hostile or broken one) gets its channel closed, which ends the
        command at its next write, and OutputTooLarge is raised.
        """
        limit = self._command_timeout if time_limit is None else time_limit
        most = self._output_limit if output_limit is None else output_limit
        wrapped = cmd("timeout", "-k", KILL_GRACE_SECONDS, f"{limit:g}", "sh", "-c", command)
        async with self._session_slot(server):
            started = time.monotonic()
            process = await self._open_channel(server, lambda conn: _start(conn, wrapped, stdin))
            output = _Output(most)
            try:
                # The client-side wait is only a backstop for a server that stopped answering.
                first = limit if first_wait is None else first_wait
                async with asyncio.timeout(first + 2 * KILL_GRACE_SECONDS) as backstop:
                    await output.collect(process, _moving(backstop, on_stdout))
            except TimeoutError:
                process.close()
                raise CommandTimeout(
                    server.address, command, limit, output.stdout, output.stderr
                ) from None
            except _OverLimit:
                process.close()
                raise OutputTooLarge(server.address, command, most) from None
            except (asyncssh.DisconnectError, OSError) as e:
                reason = e.reason if isinstance(e, asyncssh.DisconnectError) else str(e)
                raise ServerUnreachable(
                    f"connection to {server.address} was lost while a command ran: {reason}"
                ) from e
            except BaseException:
                process.close()  # `on_stdout` gave up on the command
                raise
        elapsed = time.monotonic() - started
        if process.returncode is None:
            raise ServerUnreachable(
                f"connection to {server.address} was lost while a command ran; "
                "its outcome is unknown"
            )
        stdout, stderr = output.stdout, output.stderr
        # Command lines hold no secrets (those travel in uploaded files), only checked values.
        log.info(
            "ssh %s exit %s in %dms: %s",
            server.address,
            process.returncode,
            round(elapsed * 1000),
            command if len(command) <= 160 else command[:159] + "…",
        )
        if process.returncode in TIMEOUT_STATUSES and elapsed >= limit:
            raise CommandTimeout(server.address, command, limit, stdout, stderr)
        return CommandResult(
            exit_status=process.returncode,
            stdout=stdout,
            stderr=stderr,
            duration_ms=round(elapsed * 1000),
        )

    async def upload(
        self, server: ServerConnectionInfo, path: str, content: bytes, mode: int = 0o600
    ) -> None:
        """Write `content` to `path` atomically: a temporary file in the same directory, then
        a POSIX rename over the target. Readers see the old file or the new one, never half."""
        if not path.startswith("/"):
            raise ValueError(f"upload path must be absolute: {path!r}")
        directory, name = posixpath.split(path)
        temporary = posixpath.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        async with self._session_slot(server):
            sftp = await self._open_channel(server, lambda conn: conn.start_sftp_client())
            try:
                async with sftp:
                    try:
                        attrs = asyncssh.SFTPAttrs(permissions=mode)
                        async with sftp.open(temporary, "wb", attrs) as remote:
                            await remote.write(content)
                            # The server's umask may have narrowed the mode: set it exactly.
                            await remote.chmod(mode)
                            await remote.fsync()
                        await sftp.posix_rename(temporary, path)
                    except BaseException:
                        with contextlib.suppress(asyncssh.SFTPError):
                            await sftp.remove(temporary)
                        raise
            except asyncssh.SFTPError as e:
                raise TransferFailed(
                    f"upload of {path} to {server.address} failed: {e.reason}"
                ) from e
            except asyncssh.Error as e:
                raise ServerUnreachable(f"upload to {server.address} failed: {e}") from e

    @property
    def policy(self) -> NetworkPolicy | None:
        """Which addresses this runner may dial (None: any); other dialers follow the same."""
        return self._policy

    async def open_process(
        self, server: ServerConnectionInfo, command: str, *, stdin: bool
    ) -> asyncssh.SSHClientProcess[bytes]:
        """`command` started on the server's connection, its output as bytes read by the
        caller (a stream of any size: SSH flow control makes the server wait for the reader);
        its stdin a pipe the caller writes, or /dev/null. Unlike `run`, no time limit or
        output cap is added: the caller wraps the command and drains the process."""

        async def start(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientProcess[bytes]:
            return await conn.create_process(
                command, stdin=asyncssh.PIPE if stdin else asyncssh.DEVNULL, encoding=None
            )

        return await self._open_channel(server, start)

    async def open_sftp(self, server: ServerConnectionInfo) -> asyncssh.SFTPClient:
        """An SFTP session on the server's connection; the caller closes it."""
        return await self._open_channel(server, lambda conn: conn.start_sftp_client())

    async def open_tcp(
        self, server: ServerConnectionInfo, host: str, port: int
    ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
        """A byte stream to `host:port` as the server sees it (a direct-tcpip channel,
        RFC 4254 §7.2) on the server's connection."""

        async def opener(
            conn: asyncssh.SSHClientConnection,
        ) -> tuple[asyncssh.SSHReader[bytes], asyncssh.SSHWriter[bytes]]:
            return await conn.open_connection(host, port, encoding=None)

        return await self._open_channel(server, opener)

    async def close(self, server_id: str | None = None) -> None:
        """Close one server's connection, or all of them."""
        ids = list(self._connections) if server_id is None else [server_id]
        for key in ids:
            held = self._connections.pop(key, None)
            if held is not None:
                held.conn.close()
                await held.conn.wait_closed()

    @contextlib.asynccontextmanager
    async def _session_slot(self, server: ServerConnectionInfo) -> AsyncIterator[None]:
        size, semaphore = self._sessions.get(server.server_id, (0, None))
        if semaphore is None or size != server.max_ssh_sessions:
            semaphore = asyncio.Semaphore(server.max_ssh_sessions)
            self._sessions[server.server_id] = (server.max_ssh_sessions, semaphore)
        async with semaphore:
            yield

    async def _open_channel(
        self,
        server: ServerConnectionInfo,
        opener: Callable[[asyncssh.SSHClientConnection], Awaitable[_Channel]],
    ) -> _Channel:
        held = await self._connection(server)
        try:
            return await self._answered(server, opener(held.conn))
        except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError):
            # The cached connection died unnoticed; nothing started on it, so one fresh
            # connection is safe to try.
            await self.close(server.server_id)
            held = await self._connection(server)
            try:
                return await self._answered(server, opener(held.conn))
            except (asyncssh.ChannelOpenError, asyncssh.DisconnectError, OSError) as e:
                raise ServerUnreachable(f"cannot open a session on {server.address}: {e}") from e

    async def _answered(
        self, server: ServerConnectionInfo, opening: Awaitable[_Channel]
    ) -> _Channel:
        """The channel, if the server opens it within the connect timeout. A server that
        accepted the connection and then stopped answering would otherwise hold the open
        until keepalives give up (three intervals). Whether the command started is unknown
        then, so the connection is dropped and no fresh one tried here."""
        try:
            return await asyncio.wait_for(opening, server.connect_timeout)
        except TimeoutError:
            await self.close(server.server_id)
            raise ServerUnreachable(
                f"cannot open a session on {server.address}: "
                f"no answer within {server.connect_timeout:g}s"
            ) from None

    async def _connection(self, server: ServerConnectionInfo) -> Connection:
        lock = self._connect_locks.setdefault(server.server_id, asyncio.Lock())
        async with lock:
            held = self._connections.get(server.server_id)
            if held is not None and held.info == server and not held.conn.is_closed():
                return held
            if held is not None:
                await self.close(server.server_id)
            held = await open_connection(server, self._keepalive_interval, self._policy)
            self._connections[server.server_id] = held
            return held


async def _start(
    conn: asyncssh.SSHClientConnection, command: str, stdin: bytes
) -> asyncssh.SSHClientProcess[bytes]:
    # Standard input ends after `stdin`: a command that reads more gets EOF instead of
    # waiting forever. Bytes, decoded once it ended: a chunk may end inside a UTF-8 character.
    if not stdin:
        return await conn.create_process(command, stdin=asyncssh.DEVNULL, encoding=None)
    process = await conn.create_process(command, stdin=asyncssh.PIPE, encoding=None)
    # Buffered by asyncssh and sent as the channel's window allows, while the output is read.
    process.stdin.write(stdin)
    process.stdin.write_eof()
    return process


def _moving(
    backstop: asyncio.Timeout, on_stdout: Callable[[bytes], Awaitable[float | None]] | None
) -> Callable[[bytes], Awaitable[None]]:
    async def seen(chunk: bytes) -> None:
        more = None if on_stdout is None else await on_stdout(chunk)
        if more is not None:
            now = asyncio.get_running_loop().time()
            backstop.reschedule(now + more + 2 * KILL_GRACE_SECONDS)

    return seen


class _OverLimit(Exception):
    pass


class _Output:
    """A command's stdout and stderr, read as they come, at most `limit` bytes of each.
    asyncssh stops the SSH window while we do not read, so the server waits, not our memory."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._out = bytearray()
        self._err = bytearray()

    @property
    def stdout(self) -> str:
        return self._out.decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self._err.decode("utf-8", "replace")

    async def collect(
        self,
        process: asyncssh.SSHClientProcess[bytes],
        on_stdout: Callable[[bytes], Awaitable[None]],
    ) -> None:
        """Both streams to their end, then the channel's close (which brings the status)."""
        drains = [
            asyncio.create_task(self._drain(process.stdout, self._out, on_stdout)),
            asyncio.create_task(self._drain(process.stderr, self._err, None)),
        ]
        try:
            for drain in asyncio.as_completed(drains):
                await drain  # the first failure ends both
        finally:
            for drain in drains:
                drain.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
        await process.wait_closed()

    async def _drain(
        self,
        reader: asyncssh.SSHReader[bytes],
        into: bytearray,
        on_chunk: Callable[[bytes], Awaitable[None]] | None,
    ) -> None:
        while chunk := await reader.read(READ_CHUNK_BYTES):
            if len(into) + len(chunk) > self._limit:
                raise _OverLimit
            into += chunk
            if on_chunk is not None:
                await on_chunk(chunk)
