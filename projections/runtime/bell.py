"""One LISTEN connection waking every projector of a process (LogWakeup has one waiter)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from events.wakeup import LogWakeup


class Ring(asyncio.Event):
    """A subscriber's own event, set whenever events are appended; `rung_at` is when it was
    last set (time.monotonic): every append it rang for had committed by then."""

    rung_at = 0.0

    def set(self) -> None:
        self.rung_at = time.monotonic()
        super().set()


class Bell:
    """Rings each subscriber's own event whenever events are appended."""

    def __init__(self, conninfo: str) -> None:
        self._wakeup = LogWakeup(conninfo)
        self._subscribers: list[Ring] = []
        self._task: asyncio.Task[None] | None = None

    def subscribe(self) -> Ring:
        event = Ring()
        self._subscribers.append(event)
        return event

    def start(self) -> None:
        self._wakeup.start()
        self._task = asyncio.create_task(self._ring(), name="projection-bell")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._wakeup.stop()

    async def _ring(self) -> None:
        while True:
            await self._wakeup.event.wait()
            self._wakeup.event.clear()
            for event in self._subscribers:
                event.set()


async def wait_any(seconds: float, *events: asyncio.Event) -> None:
    """Return when one of `events` is set or after `seconds`."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
