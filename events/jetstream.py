"""The JetStream stream that carries the event log, and connecting to NATS patiently."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 300.0


async def connect_nats(url: str, name: str, stop: asyncio.Event | None = None) -> Client:
    """Connect, retrying until NATS answers; afterwards nats-py reconnects by itself."""
    delay = 0.2
    while True:
        try:
            return await nats.connect(
                url,
                name=name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
            )
        except (OSError, nats.errors.Error, TimeoutError) as e:
            if stop is not None and stop.is_set():
                raise
            log.warning("NATS at %s not reachable (%s); retrying in %.1fs", url, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def ensure_stream(js: JetStreamContext, name: str, subject_prefix: str) -> None:
    """Create the events stream if missing (file storage, a duplicate window for dedupe)."""
    config = StreamConfig(
        name=name,
        subjects=[f"{subject_prefix}.events.>"],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )
    try:
        await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
