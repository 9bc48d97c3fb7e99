"""Durable JetStream pull consumers for sagas: explicit ack, in-progress heartbeats during long
steps, bounded redeliveries, then a recorded failure — never a silent drop (DESIGN.md, "NATS")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from events.publishing import WireEvent, decode_wire

log = logging.getLogger(__name__)

Handler = Callable[[WireEvent], Awaitable[None]]
MAX_DEFER_SECONDS = 30.0
ExhaustedHandler = Callable[[WireEvent, BaseException], Awaitable[None]]


class Deferred(Exception):
    """Not now: the message comes back after the retry delay, counted as no failure (e.g. its
    organization already has its share of this process's work)."""


class ConsumerSpec:
    """One durable consumer: a subject filter and what to do with each message."""

    def __init__(
        self,
        durable: str,
        subject: str,
        handle: Handler,
        on_exhausted: ExhaustedHandler,
        *,
        ack_wait: float = 30.0,
        max_deliver: int = 5,
        retry_delay: float = 2.0,
        transient: tuple[type[Exception], ...] = (),
    ) -> None:
        self.durable = durable
        self.subject = subject
        self.handle = handle
        self.on_exhausted = on_exhausted
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.retry_delay = retry_delay
        # Failures that say nothing about the work (our own database unavailable): retried
        # until they pass, never recorded as the operation's failure.
        self.transient = transient
        # Deliveries this process deferred, by stream sequence: not attempts of the work.
        self.deferrals: dict[int, int] = {}

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            # Unbounded in JetStream on purpose: the bound is ours (max_deliver), so that a
            # message whose failure could not be recorded yet is delivered again, not dropped.
            max_deliver=-1,
            filter_subject=self.subject,
        )


async def consume(
    js: JetStreamContext, stream: str, spec: ConsumerSpec, stop: asyncio.Event
) -> None:
    """Fetch and handle messages one at a time until `stop`; competing consumers share one
    durable, so several worker processes split the work."""
    sub = None
    while not stop.is_set():
        try:
            if sub is None:
                sub = await js.pull_subscribe(
                    spec.subject, durable=spec.durable, stream=stream, config=spec.config()
                )
            messages = await sub.fetch(1, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        except (nats.errors.Error, OSError) as e:
            log.warning("consumer %s cannot fetch (%s); retrying", spec.durable, e)
            sub = None
            await _pause(stop, 1.0)
            continue
        for msg in messages:
            try:
                await _deliver(spec, msg)
            except (nats.errors.Error, OSError) as e:
                # The ack (or nak) was lost: the message comes again, and handlers are
                # idempotent, so that costs a redelivery and nothing else.
                log.warning("consumer %s could not settle a message (%s)", spec.durable, e)


async def _deliver(spec: ConsumerSpec, msg: Msg) -> None:
    try:
        event = decode_wire(msg.data)
    except ValueError:
        log.error("consumer %s: undecodable message %r terminated", spec.durable, msg.subject)
        await msg.term()
        return
    heartbeat = asyncio.create_task(_keep_in_progress(msg, spec.ack_wait / 3))
    try:
        await spec.handle(event)
    except asyncio.CancelledError:
        raise
    except Deferred:
        sequence = msg.metadata.sequence.stream
        deferred = spec.deferrals[sequence] = spec.deferrals.get(sequence, 0) + 1
        # Longer each time: JetStream hands out messages due again before new ones, so
        # deferred messages that came back at once would be all the loops ever fetch.
        delay = min(spec.retry_delay * 2 ** (deferred - 1), MAX_DEFER_SECONDS)
        await msg.nak(delay=delay)
        return
    except Exception as e:
        delivered = msg.metadata.num_delivered - spec.deferrals.get(msg.metadata.sequence.stream, 0)
        if delivered >= spec.max_deliver and not isinstance(e, spec.transient):
            log.exception(
                "consumer %s: %s failed %d times; recording the failure",
                spec.durable,
                event.type,
                delivered,
            )
            try:
                await spec.on_exhausted(event, e)
            except Exception:
                # Not recorded, so not acked: the next delivery tries to record it again.
                log.exception("consumer %s: could not record the failure", spec.durable)
                await msg.nak(delay=spec.retry_delay)
                return
            spec.deferrals.pop(msg.metadata.sequence.stream, None)
            await msg.ack()
        else:
            log.warning(
                "consumer %s: %s failed (attempt %d): %s", spec.durable, event.type, delivered, e
            )
            await msg.nak(delay=spec.retry_delay)
        return
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
    spec.deferrals.pop(msg.metadata.sequence.stream, None)
    await msg.ack()


async def _keep_in_progress(msg: Msg, interval: float) -> None:
    """Tell JetStream we are still working, so a long step is not redelivered meanwhile."""
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(nats.errors.Error):
            await msg.in_progress()


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
