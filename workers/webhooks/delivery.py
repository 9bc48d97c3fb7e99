"""The delivery lanes: each loop takes an endpoint whose next delivery is due, delivers its
pending deliveries one at a time in log order, records every attempt, and gives the endpoint
back. A receiver that hangs holds its own lane for at most the timeout; a failure schedules a
retry (workers/webhooks/schedule.py) and frees the loop for other endpoints. A worker that
dies mid-delivery leaves its lane leased until the lease ends; the next worker sends the same
delivery again, with the same webhook-id (Standard Webhooks: receivers dedupe on it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import msgspec
import psycopg

from commands import webhook
from commands.runner import execute_command
from events.metadata import EventMetadata, system_actor
from events.secrets import MASK, Vault
from events.store import EventStore
from events.webhook import webhook_stream
from workers.webhooks import queue
from workers.webhooks.schedule import GiveUp, RetryAt, RetrySchedule, after_failure
from workers.webhooks.signing import signed_headers
from workers.webhooks.transport import Answered, AttemptResult, Unanswered, WebhookTransport

log = logging.getLogger(__name__)


class DeliveryConfig(msgspec.Struct, frozen=True, kw_only=True):
    timeout: float = 0.0  # seconds per call; 0: ODOOFLEET_WEBHOOK_TIMEOUT
    lanes: int = 16  # endpoints this process delivers at once
    poll_interval: float = 0.5
    lease_margin: float = 10.0  # a lane's lease outlives its call by this much
    schedule: RetrySchedule = msgspec.field(default_factory=RetrySchedule)
    # Deliveries in a row before a lane is given back: another worker may take it, and the
    # endpoint's subscription is read again (a PATCH or a disable takes effect).
    drain_limit: int = 50


class Deliverer:
    def __init__(
        self,
        store: EventStore,
        vault: Vault,
        transport: WebhookTransport,
        *,
        worker: str,
        config: DeliveryConfig,
        clock: Callable[[], datetime],
        woken: asyncio.Event,
    ) -> None:
        self._store = store
        self._pool = store.pool
        self._vault = vault
        self._transport = transport
        self._worker = worker
        self._config = config
        self._clock = clock
        self._woken = woken
        self._lease = timedelta(seconds=config.timeout + config.lease_margin)
        self.attempts = 0

    async def run(self, stop: asyncio.Event) -> None:
        loops = [asyncio.create_task(self._loop(stop)) for _ in range(self._config.lanes)]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                endpoint_id = await self._claim()
                if endpoint_id is None:
                    await self._idle(stop)
                    continue
                await self._drain(endpoint_id)
            except psycopg.OperationalError as e:
                # The lane stays leased until its lease ends; then any worker takes it again.
                log.warning("webhook delivery: PostgreSQL unavailable (%s)", e)
                await _pause(stop, 1.0)
            except Exception:
                # One endpoint's trouble (a command refused, a row it cannot read) must not
                # stop the loop that serves the others; its lease runs out and it is retried.
                log.exception("webhook delivery failed unexpectedly")
                await _pause(stop, 1.0)

    async def _idle(self, stop: asyncio.Event) -> None:
        waiters = {
            asyncio.ensure_future(self._woken.wait()),
            asyncio.ensure_future(stop.wait()),
        }
        try:
            await asyncio.wait(
                waiters, timeout=self._config.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        self._woken.clear()

    async def _claim(self) -> str | None:
        now = self._clock()
        async with self._pool.connection() as conn:
            return await queue.claim_lane(conn, self._worker, now, self._lease)

    async def _drain(self, endpoint_id: str) -> None:
        # The record of a delivery is written while the next one is sent (the order of the
        # calls is kept; a record lost with the worker only means that call is made again).
        recording: list[asyncio.Future[None]] = []
        try:
            recorded = await self._store.read_stream(webhook_stream(endpoint_id), 0, None)
            state = webhook.fold(self._store.decode_all(recorded))
            async with self._pool.connection() as conn:
                pending = await queue.next_pending(conn, endpoint_id, self._config.drain_limit)
            for delivery in pending:
                if delivery.next_attempt_at > self._clock():
                    return
                if not isinstance(state, webhook.Enabled):
                    async with self._pool.connection() as conn, conn.transaction():
                        await queue.cancel(conn, endpoint_id)
                    return
                metadata = recorded[0].metadata
                if not await self._deliver(state.subscription, delivery, metadata, recording):
                    return
        finally:
            try:
                for record in recording:
                    await record
            finally:
                async with self._pool.connection() as conn, conn.transaction():
                    await queue.release(conn, endpoint_id, self._worker)

    async def _deliver(
        self,
        subscription: webhook.Subscription,
        delivery: queue.Delivery,
        metadata: str,
        recording: list[asyncio.Future[None]],
    ) -> bool:
        """One attempt; True when it was delivered. A delivery's record goes into `recording`
        to be written meanwhile; a failure's is written before this returns (what follows
        it, a retry time or giving up, must be in place before the lane is given back)."""
        stream_id = webhook_stream(subscription.endpoint_id)
        sent_at = self._clock()
        keys = [
            await self._vault.open(stream_id, sealed)
            for sealed in subscription.signing_secrets(sent_at)
        ]
        body = delivery.payload.encode()
        if MASK in keys:
            result: AttemptResult = _unsigned()
        else:
            headers = signed_headers(str(delivery.event_id), sent_at, body, keys)
            result = await self._transport.post(subscription.url, headers, body)
        self.attempts += 1
        now = self._clock()
        first = delivery.first_attempt_at or sent_at
        attempt = _attempt(result)
        if result.delivered:
            outcome: RetryAt | GiveUp | None = None
            status: queue.Status = "delivered"
            next_at = now
        else:
            outcome = after_failure(self._config.schedule, delivery.attempts + 1, first, now)
            status = "pending" if isinstance(outcome, RetryAt) else "failed"
            next_at = outcome.at if isinstance(outcome, RetryAt) else now
        while recording:
            await recording.pop(0)
        record = self._record(delivery, attempt, status, sent_at, next_at)
        if result.delivered:
            recording.append(asyncio.ensure_future(record))
            return True
        await record
        if isinstance(outcome, GiveUp):
            await self._give_up(subscription, outcome, attempt, metadata, now)
        return result.delivered

    async def _record(
        self,
        delivery: queue.Delivery,
        attempt: queue.Attempt,
        status: queue.Status,
        sent_at: datetime,
        next_at: datetime,
    ) -> None:
        async with self._pool.connection() as conn:
            await queue.settle(
                conn,
                delivery,
                attempt,
                status=status,
                at=sent_at,
                next_attempt_at=next_at,
                worker=self._worker,
                lease=self._lease,
            )

    async def _give_up(
        self,
        subscription: webhook.Subscription,
        outcome: GiveUp,
        attempt: queue.Attempt,
        metadata: str,
        now: datetime,
    ) -> None:
        last = attempt.error or f"HTTP {attempt.status_code}"
        reason = f"{outcome.reason}; the last: {last}"
        org_id = msgspec.json.decode(metadata, type=_Owner).org_id
        await execute_command(
            self._store,
            webhook_stream(subscription.endpoint_id),
            webhook.fold,
            webhook.decide,
            webhook.DisableWebhook(reason=reason),
            now,
            EventMetadata(
                actor=system_actor(f"webhooks:{self._worker}"),
                org_id=org_id,
                correlation_id=subscription.endpoint_id,
            ),
        )
        async with self._pool.connection() as conn, conn.transaction():
            await queue.cancel(conn, subscription.endpoint_id)
        log.warning("webhook endpoint %s disabled: %s", subscription.endpoint_id, reason)


class _Owner(msgspec.Struct):
    org_id: str = ""


def _attempt(result: AttemptResult) -> queue.Attempt:
    if isinstance(result, Answered):
        outcome = "delivered" if result.delivered else "failed"
        return queue.Attempt(outcome, result.status_code, result.latency_ms, result.excerpt, None)
    return queue.Attempt(result.kind, None, result.latency_ms, "", result.error)


def _unsigned() -> AttemptResult:
    return Unanswered("refused", 0, "the signing secret cannot be read (erased, or another key)")


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
