"""GET /api/events/stream (issue 17): the organization's public events as Server-Sent Events
over a real HTTP server; Last-Event-ID resumes with no event missed or repeated while
concurrent writers append; other organizations are never shown; slow clients are cut off."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import pytest
from api_fixtures import (
    EVERYTHING,
    TEST_HOST_PORTS,
    http_served,
    mint,
    new_server,
    record,
    serving,
)

from api.app import create_app
from api.event_feed import StreamFilter, TooSlow
from events.instance import InstanceStarted, instance_stream
from events.pool import Pool
from events.server import ServerDeleted, server_stream
from events.store import EventStore
from odoofleet.settings import Settings

DEADLINE = 30.0


class Sse(msgspec.Struct, frozen=True):
    id: str | None
    event: str | None
    data: str | None
    comment: str | None


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, event_stream_heartbeat=0.2)


@pytest.fixture
async def url(fast_settings: Settings, pool: Pool, projections: None) -> AsyncIterator[str]:
    app = create_app(fast_settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    async with serving(app), http_served(app) as base:
        yield base


def token(settings: Settings, org: str = "org-a", **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings, org=org, **claims)}"}


def parse(lines: Iterator[str] | list[str]) -> Sse:
    fields: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name or "comment", []).append(value.removeprefix(" "))
    data = fields.get("data")
    return Sse(
        id=fields.get("id", [None])[-1],
        event=fields.get("event", [None])[-1],
        data=None if data is None else "\n".join(data),
        comment=fields.get("comment", [None])[-1],
    )


@asynccontextmanager
async def opened(
    base: str, headers: dict[str, str], **params: str
) -> AsyncIterator[AsyncIterator[Sse]]:
    """An open stream: its messages (events and comments) as they arrive."""
    async with (
        httpx.AsyncClient(timeout=DEADLINE) as client,
        client.stream("GET", f"{base}/api/events/stream", headers=headers, params=params) as r,
    ):
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")

        async def messages() -> AsyncIterator[Sse]:
            pending: list[str] = []
            async for line in r.aiter_lines():
                if line:
                    pending.append(line)
                elif pending:
                    yield parse(pending)
                    pending = []

        yield messages()


async def subscribed(messages: AsyncIterator[Sse]) -> None:
    """The stream's first message: once it is read, the server has subscribed."""
    first = await asyncio.wait_for(anext(messages), DEADLINE)
    assert first.comment == "odoofleet events"


async def next_event(messages: AsyncIterator[Sse]) -> Sse:
    while True:
        message = await asyncio.wait_for(anext(messages), DEADLINE)
        if message.data is not None:
            return message


async def started(store: EventStore, instance_id: str, marker: str, org: str = "org-a") -> None:
    await record(
        store,
        instance_stream(instance_id),
        InstanceStarted(instance_id=instance_id, operation_id=marker),
        org=org,
    )


async def test_a_stream_resumed_after_reconnects_misses_and_repeats_nothing_while_writers_append(
    url: str, fast_settings: Settings, store: EventStore
) -> None:
    writers, per_writer = 4, 60
    markers = [f"w{w}-{n}" for w in range(writers) for n in range(per_writer)]
    instances = [str(uuid.uuid4()) for _ in range(writers)]
    headers = token(fast_settings)
    seen: list[str] = []
    positions: list[str] = []

    async def write(w: int) -> None:
        for n in range(per_writer):
            await started(store, instances[w], f"w{w}-{n}")
            if n % 7 == 0:
                await asyncio.sleep(0)

    last_id: str | None = None
    appending: asyncio.Future[list[None]] | None = None
    rng = random.Random(17)
    reconnects = 0
    deadline = time.monotonic() + DEADLINE * 2
    while len(seen) < len(markers):
        assert time.monotonic() < deadline, f"{len(seen)} of {len(markers)} events seen"
        resume = {} if last_id is None else {"Last-Event-ID": last_id}
        async with opened(url, headers | resume) as messages:
            await subscribed(messages)
            if appending is None:
                appending = asyncio.gather(*(write(w) for w in range(writers)))
            for _ in range(rng.randint(20, 80)):
                if len(seen) == len(markers):
                    break
                event = await next_event(messages)
                body = msgspec.json.decode(event.data or "")
                seen.append(body["data"]["operationId"])
                positions.append(str(body["position"]))
                assert event.id == str(body["position"])
                last_id = event.id
        reconnects += 1
    assert appending is not None
    await appending

    assert reconnects >= 3
    assert len(seen) == len(set(seen)), "an event was repeated"
    assert sorted(seen) == sorted(markers), "an event was missed"
    for w in range(writers):
        mine = [m for m in seen if m.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{n}" for n in range(per_writer)], "a stream out of order"


async def test_a_stream_shows_only_the_callers_organization(
    url: str, fast_settings: Settings, store: EventStore
) -> None:
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())

    async with opened(url, token(fast_settings, org="org-a")) as messages:
        await subscribed(messages)
        await started(store, theirs, "secret-of-org-b", org="org-b")
        await started(store, ours, "ours")
        event = await next_event(messages)

    body = msgspec.json.decode(event.data or "")
    assert body["orgId"] == "org-a"
    assert body["data"]["operationId"] == "ours"


async def test_a_stream_filters_by_type_and_resource(
    url: str, fast_settings: Settings, store: EventStore
) -> None:
    wanted, other = str(uuid.uuid4()), str(uuid.uuid4())
    params = {"types": "instance.started,server.deleted", "resource_id": wanted}

    async with opened(url, token(fast_settings), **params) as messages:
        await subscribed(messages)
        await started(store, other, "other instance")
        await record(store, server_stream(other), ServerDeleted(server_id=other))
        await started(store, wanted, "wanted")
        event = await next_event(messages)

    assert event.event == "instance.started"
    body = msgspec.json.decode(event.data or "")
    assert (body["resourceType"], body["resourceId"]) == ("instance", wanted)


async def test_events_are_public_camel_case_with_secrets_masked(
    url: str, fast_settings: Settings
) -> None:
    headers = token(fast_settings)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=DEADLINE) as api:
        server_id = await new_server(api)
        async with opened(url, headers, types="instance.created") as messages:
            await subscribed(messages)
            created = await api.post(
                "/api/instances",
                json={
                    "name": "Shop",
                    "serverId": server_id,
                    "envVars": {"API_TOKEN": "plain-secret-value"},
                },
            )
            assert created.status_code == 202, created.text
            event = await next_event(messages)

    assert event.data is not None
    assert "plain-secret-value" not in event.data
    body = msgspec.json.decode(event.data)
    assert set(body) == {
        "id",
        "position",
        "type",
        "resourceType",
        "resourceId",
        "orgId",
        "occurredAt",
        "data",
    }
    assert body["type"] == "instance.created"
    assert body["resourceId"] == created.json()["id"]
    assert body["data"]["envVars"] == {"API_TOKEN": "********"}
    assert body["data"]["dbPassword"] == "********"
    assert "odooVersion" in body["data"]
    assert "odoo_version" not in body["data"]


async def test_an_idle_stream_sends_heartbeat_comments(url: str, fast_settings: Settings) -> None:
    async with opened(url, token(fast_settings)) as messages:
        await subscribed(messages)
        message = await asyncio.wait_for(anext(messages), DEADLINE)

    assert message.comment == "keepalive"
    assert message.data is None


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        ({"types": "instance.exploded"}, {}, 400),
        ({"resource_type": "planet"}, {}, 400),
        ({}, {"Last-Event-ID": "not-a-position"}, 400),
        ({}, {"Last-Event-ID": "999999999"}, 400),
    ],
)
async def test_a_bad_filter_or_resume_point_is_400(
    url: str, fast_settings: Settings, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(timeout=DEADLINE) as client:
        response = await client.get(
            f"{url}/api/events/stream", params=params, headers=token(fast_settings) | headers
        )

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_stream_needs_view_audit(url: str, fast_settings: Settings) -> None:
    async with httpx.AsyncClient(timeout=DEADLINE) as client:
        response = await client.get(
            f"{url}/api/events/stream",
            headers=token(fast_settings, permissions=("view:instances",)),
        )

    assert response.status_code == 403


async def test_a_slow_reader_is_cut_off_without_holding_back_the_others(
    fast_settings: Settings, pool: Pool, store: EventStore
) -> None:
    settings = msgspec.structs.replace(fast_settings, event_stream_buffer=10)
    app = create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    instance_id = str(uuid.uuid4())
    async with serving(app):
        feed = app.state.event_feed
        await feed.start()
        slow = feed.subscribe(StreamFilter(org_id="org-a"))
        fast = feed.subscribe(StreamFilter(org_id="org-a"))
        got: list[str] = []

        async def read_fast() -> None:
            while len(got) < 40:
                delivery = await fast.next(DEADLINE)
                assert delivery is not None, f"the fast reader got {len(got)} of 40"
                got.append(delivery.event.data["operationId"])

        reading = asyncio.create_task(read_fast())
        for n in range(40):
            await started(store, instance_id, f"m{n}")
        await asyncio.wait_for(reading, DEADLINE)

        with pytest.raises(TooSlow):
            await slow.next(DEADLINE)
        feed.unsubscribe(fast)

    assert got == [f"m{n}" for n in range(40)]
    assert feed.open_streams == 0


async def test_a_key_limited_to_an_instance_streams_only_its_events(
    url: str, fast_settings: Settings, store: EventStore
) -> None:
    admin = token(fast_settings, permissions=(*EVERYTHING, "manage:api-keys"))
    async with httpx.AsyncClient(base_url=url, headers=admin, timeout=DEADLINE) as api:
        server_id = await new_server(api)
        mine = await api.post("/api/instances", json={"name": "A", "serverId": server_id})
        key = await api.post(
            "/api/api-keys",
            json={"name": "s", "permissions": ["view:audit"], "instanceIds": [mine.json()["id"]]},
        )
        assert key.status_code == 201, key.text
    other = str(uuid.uuid4())

    async with opened(url, {"Authorization": f"Bearer {key.json()['key']}"}) as messages:
        await subscribed(messages)
        await started(store, other, "not yours")
        await started(store, mine.json()["id"], "yours")
        event = await next_event(messages)

    assert msgspec.json.decode(event.data or "")["data"]["operationId"] == "yours"


async def ended(messages: AsyncIterator[Sse]) -> list[Sse]:
    """The rest of a stream, once the server ends it."""
    rest: list[Sse] = []
    async with asyncio.timeout(DEADLINE):
        async for message in messages:
            rest.append(message)
    return rest


async def test_revoking_a_key_ends_the_streams_it_opened(url: str, fast_settings: Settings) -> None:
    admin = token(fast_settings, permissions=("view:audit", "manage:api-keys"))
    async with httpx.AsyncClient(base_url=url, headers=admin, timeout=DEADLINE) as api:
        key = await api.post("/api/api-keys", json={"name": "s", "permissions": ["view:audit"]})
        assert key.status_code == 201, key.text

        async with opened(url, {"Authorization": f"Bearer {key.json()['key']}"}) as messages:
            await subscribed(messages)
            assert (await api.delete(f"/api/api-keys/{key.json()['id']}")).status_code == 204
            rest = await ended(messages)

    assert rest[-1].comment == "credentials no longer valid"


async def test_a_stream_ends_when_its_token_expires(url: str, fast_settings: Settings) -> None:
    async with opened(url, token(fast_settings, ttl=2)) as messages:
        await subscribed(messages)
        rest = await ended(messages)

    assert rest[-1].comment == "credentials no longer valid"
