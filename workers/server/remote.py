"""One operation's view of its server: commands and uploads through the shared SshRunner,
each in one of the server's SSH session slots, and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from workers.runtime.slots import OperationLocks
from workers.server.payload import INSTALL_SECONDS, Payload, carrying, unpack_command
from workers.server.step_report import (
    ReportReader,
    ScriptedStep,
    UnreadableReport,
    new_nonce,
    steps_command,
)
from workers.ssh.connection import ServerConnectionInfo
from workers.ssh.hostkeys import HostKey
from workers.ssh.runner import KILL_GRACE_SECONDS, CommandResult, SshRunner

T = TypeVar("T")
_TAIL_CHARS: Final = 600


class StepError(Exception):
    """The step cannot succeed: a command failed, the server is unfit, or a value is unsafe.
    Its message says why, for the instance's statusMessage."""


class Remote:
    def __init__(
        self,
        runner: SshRunner,
        server: ServerConnectionInfo,
        locks: OperationLocks,
        *,
        slot_timeout: float,
    ) -> None:
        self.runner = runner
        self.server = server
        self._locks = locks
        self._slot_timeout = slot_timeout

    async def connect(self) -> HostKey:
        async with self._slot():
            return await self.runner.connect(self.server)

    async def run(
        self, command: str, *, time_limit: float | None = None, payload: Payload | None = None
    ) -> CommandResult:
        """`command`, carrying the files `payload` has to install (workers/server/payload.py)."""
        stdin = payload.archive() if payload else b""
        if payload:
            command = carrying(payload, command)
            time_limit = None if time_limit is None else time_limit + INSTALL_SECONDS
        async with self._slot():
            return await self.runner.run(self.server, command, time_limit=time_limit, stdin=stdin)

    async def check(
        self, command: str, *, time_limit: float | None = None, payload: Payload | None = None
    ) -> str:
        """The command's output; a non-zero exit raises StepError with the end of its output."""
        result = await self.run(command, time_limit=time_limit, payload=payload)
        if not result.ok:
            raise StepError(failure_text(result))
        return output_of(result)

    async def run_steps(
        self,
        steps: Sequence[ScriptedStep],
        payload: Payload,
        on_result: Callable[[CommandResult], Awaitable[None]],
    ) -> CommandResult:
        """`steps` in one command (workers/server/step_report.py), each step's result given to
        `on_result` as soon as the server reports it; the command's own result at the end
        (for a script that stopped without a report). A step has its own time limit on the
        server, and on the client's backstop too: it moves as each step ends."""
        nonce = new_nonce()
        command = f"{unpack_command()}; {steps_command(steps, nonce)}"
        reader = ReportReader(nonce, len(steps))

        async def reported(chunk: bytes) -> float | None:
            try:
                results = reader.feed(chunk)
            except UnreadableReport as e:
                raise StepError(f"the server's report of its steps is unreadable: {e}") from e
            for result in results:
                await on_result(result)
            done = len(reader.results)
            return steps[done].time_limit if results and done < len(steps) else None

        # The server bounds each step, and the whole command by their sum.
        limit = sum(step.time_limit + 2 * KILL_GRACE_SECONDS for step in steps)
        async with self._slot():
            return await self.runner.run(
                self.server,
                command,
                time_limit=limit,
                stdin=payload.archive(),
                on_stdout=reported,
                first_wait=steps[0].time_limit,
            )

    async def upload(self, path: str, content: bytes, mode: int) -> None:
        async with self._slot():
            await self.runner.upload(self.server, path, content, mode)

    def _slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._locks.session(
            self.server.server_id, self.server.max_ssh_sessions, self._slot_timeout
        )


def output_of(result: CommandResult) -> str:
    return "\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip())


def failure_text(result: CommandResult) -> str:
    text = (result.stderr.strip() or result.stdout.strip())[-_TAIL_CHARS:]
    return (
        f"{text} (exit status {result.exit_status})"
        if text
        else f"exit status {result.exit_status}"
    )


class NotYet:
    """What a poll saw when the condition did not hold yet (for the timeout's message)."""

    def __init__(self, seen: str) -> None:
        self.seen = seen


async def poll(
    attempt: Callable[[], Awaitable[T | NotYet]],
    *,
    within: float,
    interval: float,
    waiting_for: str,
) -> T:
    """Call `attempt` until it returns a value (it raises StepError to give up early);
    StepError with the last thing seen once `within` has passed."""
    deadline = time.monotonic() + within
    while True:
        value = await attempt()
        if not isinstance(value, NotYet):
            return value
        if time.monotonic() >= deadline:
            raise StepError(f"{waiting_for} not within {within:g}s; last seen: {value.seen}")
        await asyncio.sleep(interval)
