"""The fan-out: one durable JetStream consumer over the whole log turns each event into the
deliveries of the endpoints that subscribe to it, in log order, into the delivery queue.

It does no HTTP, so no receiver can slow it down. One process at a time runs it (a leader
lock): a single reader keeps the queue in the order JetStream holds the log. A new leader
first waits one ack-wait, so whatever its predecessor had taken and not settled comes back
to it before anything newer (JetStream hands out messages due again first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
import nats.errors
import psycopg
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import AsyncConnection

from commands.webhook import Enabled
from events.leader import LeaderLock
from events.publishing import WireEvent, decode_wire
from events.store import EventStore
from events.webhook import (
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookRedeliveryRequested,
)
from projections.public_events import PUBLIC_NAMES, PublicEvent, PublicEvents, logged_from_wire
from workers.webhooks import queue
from workers.webhooks.subscriptions import Subscriptions, org_of

log = logging.getLogger(__name__)

DURABLE: Final = "webhooks-fanout"
TEST_EVENT: Final = "webhook.test"
_BATCH: Final = 200
_encoder: Final = msgspec.json.Encoder()
Step = Callable[[AsyncConnection[Any]], Any]


class _Redelivery(msgspec.Struct, frozen=True):
    delivery_id: str


_redelivery: Final = msgspec.json.Decoder(_Redelivery)


class FanOut:
    def __init__(
        self,
        store: EventStore,
        conninfo: str,
        *,
        stream: str,
        subject_prefix: str,
        clock: Callable[[], datetime],
        woken: asyncio.Event,
        ack_wait: float = 30.0,
    ) -> None:
        self._store = store
        self._conninfo = conninfo
        self._stream = stream
        self._subject = f"{subject_prefix}.events.>"
        self._clock = clock
        self._woken = woken
        self._ack_wait = ack_wait
        self._public = PublicEvents(store)
        self.fanned_out = 0

    async def run(self, js: JetStreamContext, stop: asyncio.Event) -> None:
        lock = LeaderLock(self._conninfo, "odoofleet:webhook-fanout")
        try:
            while await lock.acquire(stop):
                await _pause(stop, self._ack_wait)
                await self._lead(js, lock, stop)
        finally:
            await lock.release()

    async def _lead(self, js: JetStreamContext, lock: LeaderLock, stop: asyncio.Event) -> None:
        subscriptions = Subscriptions(self._store)
        await subscriptions.load()
        sub = None
        while not stop.is_set():
            if not await lock.still_held():
                log.error("webhook fan-out lost its leader lock")
                return
            try:
                if sub is None:
                    sub = await js.pull_subscribe(
                        self._subject, durable=DURABLE, stream=self._stream, config=self._config()
                    )
                messages = await sub.fetch(_BATCH, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except (nats.errors.Error, OSError) as e:
                log.warning("webhook fan-out cannot fetch (%s); retrying", e)
                sub = None
                await _pause(stop, 1.0)
                continue
            await self._settle(messages, subscriptions, stop)

    def _config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=DURABLE,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._ack_wait,
            max_deliver=-1,
            filter_subject=self._subject,
        )

    async def _settle(
        self, messages: Sequence[Msg], subscriptions: Subscriptions, stop: asyncio.Event
    ) -> None:
        """Queue what the batch asks for in one transaction, then ack it. PostgreSQL being away
        holds the batch here (in progress) rather than letting later events overtake it."""
        steps = await self._steps(messages, subscriptions)
        while True:
            try:
                async with self._store.pool.connection() as conn, conn.transaction():
                    for step in steps:
                        await step(conn)
                break
            except psycopg.OperationalError as e:
                log.warning("webhook fan-out cannot queue deliveries (%s); retrying", e)
                for msg in messages:
                    with contextlib.suppress(nats.errors.Error):
                        await msg.in_progress()
                await _pause(stop, 1.0)
                if stop.is_set():
                    return
        for msg in messages:
            with contextlib.suppress(nats.errors.Error):
                await msg.ack()
        self._woken.set()

    async def _steps(self, messages: Sequence[Msg], subscriptions: Subscriptions) -> list[Step]:
        now = self._clock()
        steps: list[Step] = []
        rows: list[queue.NewDelivery] = []

        def flush() -> None:
            if rows:
                batch = list(rows)
                steps.append(lambda conn: queue.enqueue(conn, batch, now))
                self.fanned_out += len(batch)
                rows.clear()

        for msg in messages:
            try:
                wire = decode_wire(msg.data)
            except ValueError:
                log.error("webhook fan-out: undecodable message %r skipped", msg.subject)
                continue
            sequence = msg.metadata.sequence.stream
            if wire.stream_id.startswith("webhook-"):
                flush()
                steps.extend(await self._endpoint_changed(wire, sequence, subscriptions, now))
                continue
            if wire.type not in PUBLIC_NAMES:
                continue
            org_id = org_of(bytes(wire.metadata))
            if not subscriptions.any_in(org_id):
                continue
            public = await self._public.of(logged_from_wire(wire))
            if public is None:
                continue
            payload = _encoder.encode(public).decode()
            for target in subscriptions.receiving(org_id, public.type, wire.position):
                rows.append(
                    queue.NewDelivery(
                        target.endpoint_id, org_id, wire.event_id, sequence, public.type, payload
                    )
                )
        flush()
        return steps

    async def _endpoint_changed(
        self, wire: WireEvent, sequence: int, subscriptions: Subscriptions, now: datetime
    ) -> list[Step]:
        state = await subscriptions.passed(wire)
        endpoint_id = wire.stream_id.removeprefix("webhook-")
        name = wire.type
        if name == WebhookEndpointCreated.event_type() and isinstance(state, Enabled):
            test = queue.NewDelivery(
                endpoint_id,
                org_of(bytes(wire.metadata)),
                wire.event_id,
                sequence,
                TEST_EVENT,
                _test_payload(wire, endpoint_id),
            )
            self.fanned_out += 1
            return [lambda conn: queue.enqueue(conn, [test], now)]
        if name == WebhookRedeliveryRequested.event_type():
            delivery_id = _redelivery.decode(bytes(wire.data)).delivery_id
            return [lambda conn: queue.redeliver(conn, endpoint_id, delivery_id, now)]
        if name in (WebhookEndpointDisabled.event_type(), WebhookEndpointDeleted.event_type()):
            return [lambda conn: queue.cancel(conn, endpoint_id)]
        return []


def _test_payload(wire: WireEvent, endpoint_id: str) -> str:
    event = PublicEvent(
        id=wire.event_id,
        position=wire.position,
        type=TEST_EVENT,
        resource_type="webhook",
        resource_id=endpoint_id,
        org_id=org_of(bytes(wire.metadata)),
        occurred_at=datetime.fromisoformat(wire.recorded_at),
        data={"webhookId": endpoint_id, "message": "sent when the endpoint is created"},
    )
    return _encoder.encode(event).decode()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
