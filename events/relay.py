"""The outbox relay: publishes every event, in log order, to JetStream (DESIGN.md, "NATS").

It checkpoints only after JetStream acknowledged a publish, so a relay that dies in between
publishes again on restart; Nats-Msg-Id = event id makes JetStream drop the duplicate.
Publishes are sequential on purpose: with one message in flight, a NATS outage can never let
a later event overtake an earlier one that has to be retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec
import nats.errors
import psycopg
from nats.aio.client import Client
from nats.js import JetStreamContext

from events.checkpoints import load_checkpoint, save_checkpoint
from events.jetstream import connect_nats, ensure_stream
from events.leader import LeaderLock
from events.pool import Pool
from events.publishing import headers_for, payload_for, subject_for
from events.store import Checkpoint, RecordedEvent, read_all_on
from events.wakeup import LogWakeup

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "relay"
_PUBLISH_ERRORS = (nats.errors.Error, TimeoutError, OSError)


class RelayConfig(msgspec.Struct, frozen=True, kw_only=True):
    nats_url: str
    stream: str
    subject_prefix: str
    batch_size: int = 500
    poll_interval: float = 0.5
    publish_timeout: float = 2.0


class Relay:
    def __init__(
        self,
        pool: Pool,
        conninfo: str,
        config: RelayConfig,
        on_published: Callable[[RecordedEvent], None] | None = None,
    ) -> None:
        self._pool = pool
        self._conninfo = conninfo
        self._config = config
        self._on_published = on_published
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set; survives NATS and PostgreSQL outages."""
        lock = LeaderLock(self._conninfo, "odoofleet:relay")
        if not await lock.acquire(stop):
            return
        wakeup = LogWakeup(self._conninfo)
        wakeup.start()
        nc = await connect_nats(self._config.nats_url, "odoofleet-relay", stop)
        js = nc.jetstream(timeout=self._config.publish_timeout)
        try:
            await self._ensure_stream_until_ok(js, stop)
            while not stop.is_set():
                moved = await self._relay_batch(js, nc)
                if not moved:
                    await wakeup.wait(self._config.poll_interval)
                if not await lock.still_held():
                    log.error("relay lost its leader lock; waiting to take it again")
                    await lock.acquire(stop)
        finally:
            await wakeup.stop()
            await nc.close()
            await lock.release()

    async def _ensure_stream_until_ok(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await ensure_stream(js, self._config.stream, self._config.subject_prefix)
                return
            except _PUBLISH_ERRORS as e:
                log.warning("cannot create JetStream stream yet (%s)", e)
                await asyncio.sleep(0.5)

    async def _relay_batch(self, js: JetStreamContext, nc: Client) -> bool:
        """Publish the next batch; True if the checkpoint moved."""
        try:
            async with self._pool.connection() as conn:
                start = await load_checkpoint(conn, CHECKPOINT_NAME)
                batch = await read_all_on(conn, start, self._config.batch_size)
        except psycopg.OperationalError as e:
            log.warning("PostgreSQL unavailable for the relay (%s)", e)
            await asyncio.sleep(0.5)
            return False
        if not batch:
            return False
        reached = start
        try:
            for event in batch:
                await self._publish(js, event)
                reached = event.checkpoint
        except _PUBLISH_ERRORS as e:
            log.warning("publish failed at position %s (%s); will retry", event.position, e)
            if not nc.is_connected:
                await asyncio.sleep(0.2)
        return await self._save(start, reached)

    async def _publish(self, js: JetStreamContext, event: RecordedEvent) -> None:
        await js.publish(
            subject_for(self._config.subject_prefix, event),
            payload_for(event),
            stream=self._config.stream,
            headers=headers_for(event),
        )
        self.published += 1
        if self._on_published is not None:
            self._on_published(event)

    async def _save(self, start: Checkpoint, reached: Checkpoint) -> bool:
        if reached == start:
            return False
        while True:  # until PostgreSQL answers: nothing else can move without it
            try:
                async with self._pool.connection() as conn:
                    if not await save_checkpoint(conn, CHECKPOINT_NAME, start, reached):
                        log.error("relay checkpoint moved by someone else; re-reading it")
                    return True
            except psycopg.OperationalError as e:
                # The events are in JetStream; failing to record that only means they are
                # published again later, and deduplicated.
                log.warning("cannot save the relay checkpoint (%s); retrying", e)
                await asyncio.sleep(0.5)
