"""`odoofleet events tail --follow --api URL` (issue 17): the remote public event stream,
resumed with Last-Event-ID across a broken connection, nothing missed or printed twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import pytest
from api_fixtures import TEST_HOST_PORTS, http_served, mint, serving
from test_event_stream import DEADLINE, started

from api.app import create_app
from events.pool import Pool
from events.store import EventStore
from odoofleet.remote_events import RemoteRefused, follow
from odoofleet.settings import Settings


class CuttableProxy:
    """A TCP relay to the API whose open connections the test can break."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}


@pytest.fixture
async def api_port(settings: Settings, pool: Pool) -> AsyncIterator[int]:
    app = create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    async with serving(app), http_served(app) as base:
        yield int(base.rsplit(":", 1)[1])


@asynccontextmanager
async def proxied(port: int) -> AsyncIterator[CuttableProxy]:
    proxy = CuttableProxy(port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def marker(line: str) -> str:
    found: str = msgspec.json.decode(line.split(maxsplit=4)[4])["operationId"]
    return found


async def warm_up(store: EventStore, instance_id: str, printed: list[str]) -> list[str]:
    """Append until the tail prints something; the markers appended."""
    appended: list[str] = []
    deadline = time.monotonic() + DEADLINE
    while not printed:
        assert time.monotonic() < deadline, "the tail printed nothing"
        appended.append(f"warm-{len(appended)}")
        await started(store, instance_id, appended[-1])
        await asyncio.sleep(0.05)
    return appended


async def test_remote_tail_resumes_after_a_broken_connection_without_gap_or_repeat(
    api_port: int, settings: Settings, store: EventStore
) -> None:
    instance_id = str(uuid.uuid4())
    printed: list[str] = []
    stop = asyncio.Event()
    async with proxied(api_port) as proxy:
        assert proxy.server is not None
        port = proxy.server.sockets[0].getsockname()[1]
        tail = asyncio.create_task(
            follow(f"http://127.0.0.1:{port}", mint(settings), stop, printed.append)
        )
        # The stream subscribes once its response starts: events are appended until one is
        # printed, which says the tail is live (those before it were before its start).
        warmups = await warm_up(store, instance_id, printed)
        for n in range(10):
            await started(store, instance_id, f"a{n}")
        await until(lambda: len(printed) >= len(warmups) + 5, "some events")
        proxy.cut()
        for n in range(10):
            await started(store, instance_id, f"b{n}")
        live = [*(f"a{n}" for n in range(10)), *(f"b{n}" for n in range(10))]
        await until(lambda: printed and marker(printed[-1]) == "b9", "the last event")
        stop.set()
        await asyncio.wait_for(tail, DEADLINE)

    markers = [marker(line) for line in printed]
    assert markers[-len(live) :] == live
    assert markers[: -len(live)] == warmups[len(warmups) - len(markers) + len(live) :]
    assert proxy.connections >= 2
    assert all(" instance.started " in line for line in printed)


async def test_remote_tail_stops_on_a_refused_token(api_port: int) -> None:
    with pytest.raises(RemoteRefused, match="401"):
        await asyncio.wait_for(
            follow(f"http://127.0.0.1:{api_port}", "not-a-token", asyncio.Event(), print),
            DEADLINE,
        )


async def test_the_cli_follows_a_remote_api(
    api_port: int, settings: Settings, store: EventStore
) -> None:
    instance_id = str(uuid.uuid4())
    env = {**os.environ, "ODOOFLEET_API_TOKEN": mint(settings)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "odoofleet",
        "events",
        "tail",
        "--follow",
        "--api",
        f"http://127.0.0.1:{api_port}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        lines: list[str] = []

        async def read() -> None:
            assert process.stdout is not None
            while len(lines) < 1:
                lines.append((await process.stdout.readline()).decode())

        # The CLI subscribes some time after it starts: append until a line comes.
        reading = asyncio.create_task(read())
        deadline = time.monotonic() + DEADLINE
        while not reading.done():
            assert time.monotonic() < deadline, "the CLI printed nothing"
            await started(store, instance_id, "cli")
            await asyncio.wait({reading}, timeout=0.5)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), DEADLINE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert " instance.started " in lines[0]
    assert '"operationId":"cli"' in lines[0]
    assert code == 0
