"""LISTEN/NOTIFY wake-ups for log readers, with polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

CHANNEL = "odoofleet_events"
log = logging.getLogger(__name__)


class LogWakeup:
    """Sets an asyncio.Event whenever events are appended; reconnects after a PostgreSQL
    restart. Readers also poll, so a lost notification only delays them."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self.event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="log-wakeup")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, seconds: float) -> None:
        """Wait for a notification or `seconds`, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), seconds)
        self.event.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.event.set()  # anything appended while we were away
                    async for _ in conn.notifies():
                        self.event.set()
            except psycopg.OperationalError as e:
                log.warning("listen connection lost (%s); retrying", e)
                self.event.set()
                await asyncio.sleep(1.0)
