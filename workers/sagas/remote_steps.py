"""Steps that are only commands on the server, run several in one SSH round trip.

A `RemoteStep` is a step whose work is a command (and the files it installs): no decision
in Python between its start and its end. Consecutive remote steps not completed yet run as
one command (workers/server/step_report.py) that reports each step as it ends, and each is
recorded as if it had run alone, as it happens: started, then completed with its output and
the duration the server measured (and the next one started), or failed, which ends the
operation as ever.

What the log guarantees stays: the first step's start is recorded before the command is
sent, with the log's compare-and-set append, so two workers never both run the batch; a step
recorded as completed is never run again; a worker that dies while the command runs leaves
the step it was in started, not completed, and its replacement runs the batch again from
that step (steps are idempotent). The dead worker's command stops at its next report line,
which nobody reads any more, so it does not run on beside the new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple, NoReturn

from workers.sagas.operation_log import OperationLog, StepFailed
from workers.sagas.runtime import Step, guarded
from workers.server.payload import INSTALL_SECONDS, Payload
from workers.server.remote import Remote, StepError, failure_text, output_of
from workers.server.step_report import ScriptedStep, timed_out
from workers.ssh.errors import CommandTimeout, ServerUnreachable, SshError
from workers.ssh.runner import CommandResult


class RemoteWork(NamedTuple):
    command: str
    time_limit: float


class RemoteStep(NamedTuple):
    name: str
    # The step's command; the files it installs are added to the payload it is given. It
    # raises StepError when the instance's settings cannot make a safe command.
    work: Callable[[Payload], RemoteWork]


AnyStep = Step | RemoteStep


async def run_steps(
    log: OperationLog,
    steps: Sequence[AnyStep],
    remote: Callable[[], Remote],
    *,
    carried: Collection[str] = (),
) -> None:
    """`runtime.resume` for steps some of which are remote: the steps not completed yet, in
    order, consecutive remote ones in one command."""
    pending = [step for step in steps if step.name not in carried]
    i = 0
    while i < len(pending):
        step = pending[i]
        if step.name in log.progress.completed:
            i += 1
        elif isinstance(step, Step):
            await log.step(step.name, guarded(step, retry_unreachable=True))
            i += 1
        else:
            j = i + 1
            while j < len(pending) and _joins_batch(pending[j], log):
                j += 1
            batch = [s for s in pending[i:j] if isinstance(s, RemoteStep)]
            i += await _run_batch(log, batch, remote)


def _joins_batch(step: AnyStep, log: OperationLog) -> bool:
    return isinstance(step, RemoteStep) and step.name not in log.progress.completed


async def run_remote_step(step: RemoteStep, remote: Remote) -> str:
    """One remote step in a command of its own; its output as a step returns it."""
    payload = Payload()
    work = step.work(payload)
    return await remote.check(work.command, time_limit=work.time_limit, payload=payload)


async def _run_batch(
    log: OperationLog, batch: list[RemoteStep], remote: Callable[[], Remote]
) -> int:
    """Run the steps of `batch` whose commands can be built, up to the first that cannot;
    how many of them ran."""
    payload = Payload()
    scripted: list[ScriptedStep] = []
    for step in batch:
        files = len(payload)
        try:
            work = step.work(payload)
        except StepError:
            break  # run alone below once it is first, so its failure is recorded as its own
        installs = INSTALL_SECONDS if len(payload) > files else 0.0
        scripted.append(ScriptedStep(work.command, work.time_limit + installs))
    if len(scripted) < 2:
        first = batch[0]
        alone = Step(first.name, lambda: run_remote_step(first, remote()))
        await log.step(first.name, guarded(alone, retry_unreachable=True))
        return 1
    return await _run_script(log, batch[: len(scripted)], scripted, payload, remote)


async def _run_script(
    log: OperationLog,
    ran: list[RemoteStep],
    scripted: list[ScriptedStep],
    payload: Payload,
    remote: Callable[[], Remote],
) -> int:
    """The batch's command, sent once its first step's start is recorded; each step's end
    and the next one's start recorded as the server reports them. The step running when
    the command fails is the one that failed; an unreachable server is left to the
    redelivery, as for a step alone (runtime.guarded)."""
    running = _Running(log, ran, scripted)
    await running.begin()
    try:
        whole = await remote().run_steps(scripted, payload, running.ended)
    except (StepFailed, ServerUnreachable):
        raise
    except (StepError, SshError) as e:
        if running.index < len(ran):  # else every step reported: what failed is not theirs
            await running.fail(_failure(e, scripted[running.index]), cause=e)
        return len(ran)
    if running.index < len(ran):
        await running.fail(f"the server stopped before reporting it: {failure_text(whole)}")
    return len(ran)


def _failure(error: StepError | SshError, step: ScriptedStep) -> str:
    if isinstance(error, CommandTimeout):  # the client's backstop: the server went silent
        return f"did not finish within {step.time_limit:g}s: the server stopped answering"
    return str(error)


class _Running:
    """Which step of a batch runs now, recorded as the report comes."""

    def __init__(
        self, log: OperationLog, steps: list[RemoteStep], scripted: list[ScriptedStep]
    ) -> None:
        self.log, self.steps, self.scripted = log, steps, scripted
        self.index = 0
        self.began = time.monotonic()

    async def begin(self) -> None:
        self.began = time.monotonic()
        await self.log.begin(self.steps[self.index].name)

    async def ended(self, result: CommandResult) -> None:
        name, step = self.steps[self.index].name, self.scripted[self.index]
        if not result.ok:
            message = failure_text(result)
            if timed_out(result, step):
                message = f"did not finish within {step.time_limit:g}s: {message}"
            await self.log.failed(name, message, result.duration_ms)
            raise StepFailed(name, message)
        await self.log.completed(name, output_of(result), result.duration_ms)
        self.index += 1
        if self.index < len(self.steps):
            await self.begin()

    async def fail(self, message: str, cause: Exception | None = None) -> NoReturn:
        """Record the running step's failure and raise it, caused by `cause` (a saga looks
        there for what the failure says of the server: a changed host key puts it in error)."""
        name = self.steps[self.index].name
        await self.log.failed(name, message, int((time.monotonic() - self.began) * 1000))
        raise StepFailed(name, message) from cause
