"""Saga consumers on JetStream: retries are bounded, failures recorded, long steps kept alive."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import nats
import pytest_asyncio
from waiting import eventually

from events.jetstream import ensure_stream
from events.publishing import WireEvent
from odoofleet.settings import Settings
from workers.runtime.consumer import ConsumerSpec, consume


@pytest_asyncio.fixture
async def js(settings: Settings):
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    await ensure_stream(js, settings.nats_stream, settings.subject_prefix)
    yield js
    await nc.close()


async def _publish(js, settings: Settings, n: int) -> list[str]:
    ids = []
    for i in range(n):
        event_id = str(uuid.uuid4())
        wire = WireEvent(
            event_id=event_id,
            position=i + 1,
            stream_id=f"instance-{i}",
            version=1,
            type="ProvisioningRequested",
            schema_version=1,
            recorded_at="2026-01-01T00:00:00+00:00",
            data=b"{}",
            metadata=b"{}",
        )
        import msgspec

        await js.publish(
            f"{settings.subject_prefix}.events.org.instance.ProvisioningRequested",
            msgspec.json.encode(wire),
            headers={"Nats-Msg-Id": event_id},
        )
        ids.append(event_id)
    return ids


def _subject(settings: Settings) -> str:
    return f"{settings.subject_prefix}.events.*.instance.ProvisioningRequested"


async def _run(js, settings: Settings, specs: list[ConsumerSpec], until) -> None:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consume(js, settings.nats_stream, s, stop)) for s in specs]
    try:
        await until()
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def test_a_failing_message_is_retried_then_its_failure_recorded_once(js, settings):
    attempts: Counter[str] = Counter()
    exhausted: list[str] = []

    async def handle(event: WireEvent) -> None:
        attempts[event.event_id] += 1
        raise RuntimeError("ssh: connection refused")

    async def record(event: WireEvent, error: BaseException) -> None:
        exhausted.append(f"{event.event_id}: {error}")

    (event_id,) = await _publish(js, settings, 1)
    spec = ConsumerSpec("prov", _subject(settings), handle, record, max_deliver=3, retry_delay=0)

    await _run(js, settings, [spec], lambda: eventually(lambda: exhausted, timeout=20))

    assert attempts[event_id] == 3
    assert exhausted == [f"{event_id}: ssh: connection refused"]


async def test_a_step_longer_than_ack_wait_is_not_redelivered(js, settings):
    seen: Counter[str] = Counter()
    done: list[str] = []

    async def handle(event: WireEvent) -> None:
        seen[event.event_id] += 1
        await asyncio.sleep(2.5)  # the long "step" itself, not a wait for a condition
        done.append(event.event_id)

    async def record(event: WireEvent, error: BaseException) -> None:
        raise AssertionError("nothing fails here")

    await _publish(js, settings, 1)
    spec = ConsumerSpec("prov", _subject(settings), handle, record, ack_wait=1.0)
    second = ConsumerSpec("prov", _subject(settings), handle, record, ack_wait=1.0)

    await _run(js, settings, [spec, second], lambda: eventually(lambda: done, timeout=20))

    assert list(seen.values()) == [1]


async def test_competing_consumers_share_the_work_and_handle_each_message_once(js, settings):
    handled: Counter[str] = Counter()
    by_worker: Counter[int] = Counter()

    def handler(worker: int):
        async def handle(event: WireEvent) -> None:
            handled[event.event_id] += 1
            by_worker[worker] += 1
            await asyncio.sleep(0.01)

        return handle

    async def record(event: WireEvent, error: BaseException) -> None:
        raise AssertionError("nothing fails here")

    ids = await _publish(js, settings, 40)
    specs = [ConsumerSpec("prov", _subject(settings), handler(w), record) for w in range(3)]

    await _run(js, settings, specs, lambda: eventually(lambda: len(handled) == 40, timeout=30))

    assert set(handled) == set(ids)
    assert set(handled.values()) == {1}
    assert len(by_worker) >= 2
