"""Services a test runs in its own event loop beside itself (relay, workers, projections,
webhooks), each until its stop event is set."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from events.pool import Pool
from events.relay import Relay, RelayConfig
from odoofleet.settings import Settings

Running = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class Background:
    """Long-running services of the test, each with its stop."""

    def __init__(self) -> None:
        self._running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(self, run: Running) -> asyncio.Task[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(run(stop))
        self._running.append((stop, task))
        return task

    async def stop(self, timeout: float = 30) -> None:
        for stop, _ in self._running:
            stop.set()
        for _, task in self._running:
            await asyncio.wait_for(task, timeout)


def relay(settings: Settings, pool: Pool) -> Running:
    """The relay onto this test's JetStream stream, polling the log every 50 ms."""
    config = RelayConfig(
        nats_url=settings.nats_url,
        stream=settings.nats_stream,
        subject_prefix=settings.subject_prefix,
        poll_interval=0.05,
    )
    return lambda stop: Relay(pool, settings.database_url, config).run(stop)
