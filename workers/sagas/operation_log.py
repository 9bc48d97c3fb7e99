"""An operation's own stream, folded: which steps are done, so a resumed saga skips them.

Every append names the version it expects, so two workers can never both record (and so
both run) one step: the second one's append conflicts and it backs off. An append whose reply
was lost is sent again with the same event id, which the store absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

import msgspec
import psycopg

from events.errors import WrongExpectedVersion
from events.metadata import EventMetadata
from events.operation import (
    OperationCancelled,
    OperationFailed,
    OperationStarted,
    OperationStepCompleted,
    OperationStepFailed,
    OperationStepStarted,
    OperationSucceeded,
    OperationType,
    operation_stream,
)
from events.registry import DomainEvent
from events.store import NO_STREAM, EventStore, ExpectedVersion

OUTPUT_LIMIT: Final = 2000
_FIRST_RETRY: Final = 0.2
_LONGEST_RETRY: Final = 2.0

log = logging.getLogger(__name__)


class OperationProgress(msgspec.Struct, frozen=True, kw_only=True):
    """An operation's stream folded: how far it got, and how often each step was tried."""

    version: int = 0
    started: OperationStarted | None = None
    completed: dict[str, str] = {}  # step -> its output
    attempts: dict[str, int] = {}
    finished: bool = False
    cancelled: bool = False
    failed_step: str | None = None


def evolve(progress: OperationProgress, event: DomainEvent) -> OperationProgress:
    replace = msgspec.structs.replace
    progress = replace(progress, version=progress.version + 1)
    match event:
        case OperationStarted():
            return replace(progress, started=event)
        case OperationStepStarted(step=step):
            attempts = {**progress.attempts, step: progress.attempts.get(step, 0) + 1}
            return replace(progress, attempts=attempts)
        case OperationStepCompleted(step=step, output=output):
            return replace(progress, completed={**progress.completed, step: output})
        case OperationStepFailed(step=step):
            return replace(progress, failed_step=step)
        case OperationSucceeded() | OperationFailed():
            return replace(progress, finished=True)
        case OperationCancelled():
            return replace(progress, finished=True, cancelled=True)
        case _:
            return progress


def fold_progress(events: Iterable[DomainEvent]) -> OperationProgress:
    progress = OperationProgress()
    for event in events:
        progress = evolve(progress, event)
    return progress


class OperationTakenOver(Exception):
    """Another worker recorded a step of this operation first, or it was cancelled."""


class StepFailed(Exception):
    """A step failed out in the world; its failure is recorded."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        self.message = message
        super().__init__(f"{step}: {message}")


def excerpt(text: str, limit: int = OUTPUT_LIMIT) -> str:
    """A bounded excerpt: the end of the output is where errors are."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


class OperationLog:
    """Records one operation's progress in its stream, with compare-and-set appends."""

    def __init__(
        self,
        store: EventStore,
        operation_id: str,
        metadata: EventMetadata,
        mask: Callable[[str], str] = str,
    ) -> None:
        self.store = store
        self.operation_id = operation_id
        self.stream_id = operation_stream(operation_id)
        self.metadata = metadata
        # Applied to outputs and errors before they are recorded (and before they are cut to
        # an excerpt, so no cut can leave half a secret behind).
        self.mask = mask
        self.progress = OperationProgress()

    async def load(self) -> OperationProgress:
        self.progress = fold_progress((await self.store.load_stream(self.stream_id)).events)
        return self.progress

    async def start(
        self, kind: OperationType, instance_id: str | None, server_id: str, worker: str
    ) -> None:
        if self.progress.started is None:
            await self._record(
                OperationStarted(
                    operation_id=self.operation_id,
                    type=kind,
                    instance_id=instance_id,
                    server_id=server_id,
                    worker=worker,
                )
            )

    async def step(self, name: str, run: Callable[[], Awaitable[str]]) -> str:
        """Run step `name` unless it is already completed; record start and outcome."""
        if name in self.progress.completed:
            return self.progress.completed[name]
        await self.begin(name)
        began = time.monotonic()
        try:
            output = await run()
        except StepFailed as e:
            await self.failed(name, e.message, _ms_since(began))
            raise
        await self.completed(name, output, _ms_since(began))
        return output

    async def begin(self, name: str) -> None:
        """Record that step `name` starts (one more attempt). Recorded before the step runs,
        this is what keeps two workers from both running it: the second append conflicts."""
        attempt = self.progress.attempts.get(name, 0) + 1
        await self._record(
            OperationStepStarted(operation_id=self.operation_id, step=name, attempt=attempt)
        )

    async def completed(self, name: str, output: str, duration_ms: int) -> None:
        await self._record(
            OperationStepCompleted(
                operation_id=self.operation_id,
                step=name,
                duration_ms=duration_ms,
                output=excerpt(self.mask(output)),
            )
        )

    async def failed(self, name: str, message: str, duration_ms: int) -> None:
        await self._record(
            OperationStepFailed(
                operation_id=self.operation_id,
                step=name,
                duration_ms=duration_ms,
                error=excerpt(self.mask(message), 500),
                output="",
            )
        )

    async def succeed(self) -> None:
        if not self.progress.finished:
            await self._record(OperationSucceeded(operation_id=self.operation_id))

    async def fail(self, step: str | None, error: str) -> None:
        if not self.progress.finished:
            await self._record(
                OperationFailed(
                    operation_id=self.operation_id, step=step, error=excerpt(self.mask(error), 500)
                )
            )

    async def cancel(self, reason: str) -> None:
        """Cancel from outside (e.g. a removal during provisioning); retried until it lands."""
        while True:
            await self.load()
            if self.progress.finished:
                return
            try:
                await self._record(
                    OperationCancelled(operation_id=self.operation_id, reason=reason)
                )
                return
            except OperationTakenOver:
                continue

    async def _record(self, event: DomainEvent) -> None:
        """Append `event`, waiting for PostgreSQL as long as it is unavailable: once a step
        ran out in the world, giving up on recording it would make the next delivery run it
        again (the consumer keeps the message in progress meanwhile)."""
        expected: ExpectedVersion = self.progress.version or NO_STREAM
        event_id = uuid.uuid4()
        delay = _FIRST_RETRY
        while True:
            try:
                await self.store.append(
                    self.stream_id, expected, [event], self.metadata, [event_id]
                )
                break
            except WrongExpectedVersion as e:
                raise OperationTakenOver(str(e)) from e
            except psycopg.OperationalError as e:
                log.warning(
                    "operation %s: cannot record %s yet (%s); retrying",
                    self.operation_id,
                    event.event_type(),
                    e,
                )
                await asyncio.sleep(delay)
                delay = min(2 * delay, _LONGEST_RETRY)
        self.progress = evolve(self.progress, event)


def _ms_since(began: float) -> int:
    return int((time.monotonic() - began) * 1000)
