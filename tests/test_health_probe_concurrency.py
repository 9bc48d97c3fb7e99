"""The health command probes a server's instances a few at a time: a /web/health that hangs
holds only its own probe slot, not the instances queued behind it, and the time a probe
waited for its slot is not counted as the instance's latency."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from workers.health.probe import (
    PROBE_TIMEOUT_SECONDS,
    HealthTarget,
    health_command,
    parse_health_output,
)
from workers.health.window import LATENCY_LIMIT_MS


@pytest_asyncio.fixture
async def ports() -> AsyncIterator[tuple[int, int]]:
    """A port that answers /web/health at once, and one that accepts and never answers."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the probe gives up and closes
        writer.close()

    fast = await asyncio.start_server(answer, "127.0.0.1", 0)
    slow = await asyncio.start_server(hang, "127.0.0.1", 0)
    yield fast.sockets[0].getsockname()[1], slow.sockets[0].getsockname()[1]
    fast.close()
    slow.close()


# Longer than the latency that judges an instance degraded (LATENCY_LIMIT_MS).
LATE_SECONDS = 1.5


@pytest_asyncio.fixture
async def late_port() -> AsyncIterator[int]:
    """A port that answers /web/health after LATE_SECONDS."""

    async def answer_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(LATE_SECONDS)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    late = await asyncio.start_server(answer_late, "127.0.0.1", 0)
    yield late.sockets[0].getsockname()[1]
    late.close()


async def _run(command: str, tmp_path: Path) -> str:
    """As a server's shell runs it, with a `docker` that knows no container."""
    (tmp_path / "docker").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "docker").chmod(0o755)
    env = os.environ | {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    shell = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await shell.communicate()
    assert shell.returncode == 0
    return out.decode()


async def test_hanging_probes_do_not_hold_back_the_others(
    ports: tuple[int, int], tmp_path: Path
) -> None:
    fast, slow = ports
    hanging = [HealthTarget(str(uuid.uuid4()), f"hang{n}", "blue", slow) for n in range(3)]
    answering = [HealthTarget(str(uuid.uuid4()), f"fine{n}", "blue", fast) for n in range(6)]

    started = time.monotonic()
    output = await _run(health_command(hanging + answering, concurrency=4), tmp_path)
    elapsed = time.monotonic() - started

    samples = {s.instance_id: s for s in parse_health_output(output)}
    assert set(samples) == {t.instance_id for t in hanging + answering}
    assert all(samples[t.instance_id].http_status == 200 for t in answering)
    assert all(samples[t.instance_id].http_status is None for t in hanging)
    # One after another, the three hanging probes alone would take three timeouts.
    assert elapsed < 2 * PROBE_TIMEOUT_SECONDS


async def test_no_more_probes_run_at_once_than_the_bound(
    ports: tuple[int, int], tmp_path: Path
) -> None:
    _, slow = ports
    hanging = [HealthTarget(str(uuid.uuid4()), f"hang{n}", "blue", slow) for n in range(3)]

    started = time.monotonic()
    output = await _run(health_command(hanging, concurrency=2), tmp_path)

    assert len(parse_health_output(output)) == 3
    # Two slots for three hanging probes: the third waits for a slot, one timeout later.
    assert time.monotonic() - started >= 2 * PROBE_TIMEOUT_SECONDS


async def test_a_probe_queued_for_a_slot_is_timed_from_when_it_got_one(
    ports: tuple[int, int], late_port: int, tmp_path: Path
) -> None:
    fast, _ = ports
    late = HealthTarget(str(uuid.uuid4()), "late", "blue", late_port)
    queued = HealthTarget(str(uuid.uuid4()), "queued", "blue", fast)

    started = time.monotonic()
    output = await _run(health_command([late, queued], concurrency=1), tmp_path)
    elapsed = time.monotonic() - started

    samples = parse_health_output(output)
    assert [s.instance_id for s in samples] == [late.instance_id, queued.instance_id]
    late_ms, queued_ms = (s.response_time_ms or 0.0 for s in samples)
    assert late_ms >= LATE_SECONDS * 1000
    # One slot: the second probe started once the first had its answer...
    assert elapsed >= LATE_SECONDS
    # ...and its own time is its answer's, not the wait for the slot.
    assert 0 < queued_ms < LATENCY_LIMIT_MS
