"""`odoofleet relay` SIGKILLed mid-burst and started again: every event once, in log order."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from builders import meta, step
from reliability_fixtures import running, start_odoofleet, stop
from test_relay import _count, _log_order, _stream_messages
from waiting import eventually

from events.store import NO_STREAM, EventStore
from odoofleet.settings import Settings

# At least this many events; the writer goes on until the second relay runs, so the first
# one always dies mid-burst, however long it took to start.
AT_LEAST = 3000
STREAMS = 50


async def test_a_relay_killed_mid_burst_and_restarted_publishes_each_event_once_in_order(
    store: EventStore, settings: Settings
):
    appended = 0
    restarted = asyncio.Event()

    async def writer() -> None:
        nonlocal appended
        while appended < AT_LEAST or not restarted.is_set():
            n = appended
            version = NO_STREAM if n < STREAMS else n // STREAMS
            await store.append(f"operation-{n % STREAMS}", version, [step(n)], meta())
            appended += 1

    writing = asyncio.create_task(writer())
    first = start_odoofleet(settings, "relay")
    try:
        await eventually(lambda: appended >= 300, timeout=30, message="a burst under way")
        await eventually(
            lambda: _published_at_least(settings, 100), timeout=30, message="100 published"
        )
    finally:
        stop(first, signal.SIGKILL)
    at_kill = appended
    await eventually(lambda: appended >= at_kill + 300, timeout=60, message="writing went on")

    with running(settings, "relay"):
        restarted.set()
        await writing
        await eventually(
            lambda: _published_at_least(settings, appended), timeout=60, message="all published"
        )

    in_stream = await _stream_messages(
        settings.nats_url, settings.nats_stream, f"{settings.subject_prefix}.events.>"
    )
    log = await _log_order(store)
    assert len(in_stream) == appended >= AT_LEAST
    assert in_stream == [(str(e.event_id), e.stream_id, e.version) for e in log]


async def _published_at_least(settings: Settings, count: int) -> bool:
    with contextlib.suppress(Exception):  # the stream does not exist until the relay makes it
        return await _count(settings.nats_url, settings.nats_stream) >= count
    return False
