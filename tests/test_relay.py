"""The relay publishes the log to JetStream in order, exactly once, through NATS outages."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

import nats
import pytest_asyncio
from builders import meta, step
from infra import NatsProcess
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from waiting import eventually

from events.pool import Pool
from events.publishing import decode_wire
from events.relay import Relay, RelayConfig
from events.store import NO_STREAM, START, EventStore, RecordedEvent
from odoofleet.settings import Settings


@pytest_asyncio.fixture
async def own_nats():
    server = NatsProcess(Path(tempfile.mkdtemp(prefix="relay-nats-")))
    server.start()
    yield server
    server.kill()


async def _log_order(store: EventStore) -> list[RecordedEvent]:
    events, checkpoint = [], START
    while batch := await store.read_all(checkpoint, limit=5000):
        events += batch
        checkpoint = batch[-1].checkpoint
    return events


async def _stream_messages(url: str, stream: str, subjects: str) -> list[tuple[str, str, int]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        sub = await js.pull_subscribe(
            subjects,
            stream=stream,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE),
        )
        out = []
        while len(out) < info.state.messages:
            for msg in await sub.fetch(500, timeout=5):
                wire = decode_wire(msg.data)
                out.append((msg.headers["Nats-Msg-Id"], wire.stream_id, wire.version))
        return out
    finally:
        await nc.close()


async def _count(url: str, stream: str) -> int:
    nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
    try:
        return int((await nc.jetstream().stream_info(stream)).state.messages)
    finally:
        await nc.close()


def _relay(pool: Pool, settings: Settings, url: str) -> Relay:
    config = RelayConfig(
        nats_url=url,
        stream=settings.nats_stream,
        subject_prefix=settings.subject_prefix,
        publish_timeout=0.5,
    )
    return Relay(pool, settings.database_url, config)


async def test_relay_publishes_every_event_with_subject_and_headers(
    store: EventStore, pool: Pool, settings: Settings
):
    for n in range(3):
        await store.append(f"operation-{n}", NO_STREAM, [step(n)], meta(org="acme"))
    stop = asyncio.Event()
    relay = _relay(pool, settings, settings.nats_url)
    task = asyncio.create_task(relay.run(stop))
    try:
        await eventually(lambda: relay.published == 3, message="3 events published")
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        msg = await js.get_msg(settings.nats_stream, seq=1)
        await nc.close()
    finally:
        stop.set()
        await task

    assert msg.subject == f"{settings.subject_prefix}.events.acme.operation.OperationStepCompleted"
    assert msg.headers is not None
    assert msg.headers["Odoofleet-Stream-Id"] == "operation-0"
    assert msg.headers["Odoofleet-Version"] == "1"
    assert decode_wire(msg.data).stream_id == "operation-0"


async def test_nats_killed_mid_way_loses_nothing_and_duplicates_nothing(
    store: EventStore, pool: Pool, settings: Settings, own_nats: NatsProcess
):
    total = 3000
    appended = 0

    async def writer() -> None:
        nonlocal appended
        for n in range(total):
            stream = f"operation-{n % 50}"
            await store.append(stream, NO_STREAM if n < 50 else n // 50, [step(n)], meta())
            appended += 1
            if n % 20 == 0:
                await asyncio.sleep(0)

    stop = asyncio.Event()
    relay = _relay(pool, settings, own_nats.url)
    relaying = asyncio.create_task(relay.run(stop))
    writing = asyncio.create_task(writer())
    try:
        await eventually(lambda: relay.published >= 500, timeout=30, message="500 published")
        own_nats.kill()
        published_at_kill = relay.published
        await eventually(lambda: appended >= published_at_kill + 500, timeout=30)
        own_nats.start()
        await writing

        async def all_in_stream() -> bool:
            with contextlib.suppress(Exception):
                return await _count(own_nats.url, settings.nats_stream) >= total
            return False

        await eventually(all_in_stream, timeout=60, message="every event in JetStream")
    finally:
        stop.set()
        await asyncio.wait_for(relaying, 30)

    in_stream = await _stream_messages(
        own_nats.url, settings.nats_stream, f"{settings.subject_prefix}.events.>"
    )
    log = await _log_order(store)
    assert len(in_stream) == total
    assert len({msg_id for msg_id, _, _ in in_stream}) == total
    assert in_stream == [(str(e.event_id), e.stream_id, e.version) for e in log]
