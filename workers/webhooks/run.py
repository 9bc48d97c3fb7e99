"""The webhook worker of one process: the fan-out (leader or standby) and the delivery
lanes, until `stop`. Runs in `odoofleet work` and `odoofleet dev`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import nats.errors

from events.jetstream import connect_nats, ensure_stream
from events.pool import Pool
from events.secrets import Vault
from events.store import EventStore
from workers.runtime.config import WorkerConfig
from workers.webhooks.addresses import Resolve, webhook_addresses
from workers.webhooks.delivery import Deliverer, DeliveryConfig
from workers.webhooks.fanout import FanOut
from workers.webhooks.transport import WebhookTransport

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_webhooks(
    settings: WorkerConfig,
    pool: Pool,
    stop: asyncio.Event,
    *,
    config: DeliveryConfig | None = None,
    clock: Callable[[], datetime] = utc_now,
    resolve: Resolve | None = None,
    ssl_context: ssl.SSLContext | None = None,
    fanout_ack_wait: float = 30.0,
    worker: str | None = None,
    on_start: Callable[[FanOut, Deliverer], None] | None = None,
) -> None:
    """`config` defaults to the settings' timeout; `clock`, `resolve` and `ssl_context`
    are what tests replace (a schedule's 24 hours, a DNS answer, a test CA)."""
    config = config or DeliveryConfig()
    config = msgspec.structs.replace(config, timeout=config.timeout or settings.webhook_timeout)
    name = worker or settings.worker_name or f"{socket.gethostname()}-{os.getpid()}"
    store = EventStore(pool)
    woken = asyncio.Event()
    transport = WebhookTransport(
        webhook_addresses(settings, resolve), timeout=config.timeout, ssl_context=ssl_context
    )
    fanout = FanOut(
        store,
        settings.database_url,
        stream=settings.nats_stream,
        subject_prefix=settings.subject_prefix,
        clock=clock,
        woken=woken,
        ack_wait=fanout_ack_wait,
    )
    deliverer = Deliverer(
        store,
        Vault(pool, settings.secret_key),
        transport,
        worker=name,
        config=config,
        clock=clock,
        woken=woken,
    )
    if on_start is not None:
        on_start(fanout, deliverer)
    nc = await connect_nats(settings.nats_url, f"odoofleet-webhooks-{name}", stop)
    try:
        js = nc.jetstream()
        while not stop.is_set():
            try:
                await ensure_stream(js, settings.nats_stream, settings.subject_prefix)
                break
            except (nats.errors.Error, TimeoutError, OSError) as e:
                log.warning("JetStream stream not ready for webhooks (%s); retrying", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        await asyncio.gather(fanout.run(js, stop), deliverer.run(stop))
    finally:
        await transport.close()
        await nc.close()
