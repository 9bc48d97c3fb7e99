"""Fixtures of the API tests: the real app on the test's own database, projections running.

The app is driven through httpx's ASGI transport inside the test's event loop, with the
app's own lifespan. (Litestar 2's AsyncTestClient runs the app on another thread's event
loop, litestar#1920: requests would block the loop the projections run on and could not
run concurrently.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest_asyncio
import uvicorn
from litestar import Litestar

from api.app import create_app
from commands.defaults import HostPorts
from events.instance import InstanceProvisioned, instance_stream
from events.metadata import EventMetadata, system_actor
from events.pool import Pool
from events.registry import DomainEvent
from events.store import ANY, EventStore
from odoofleet.settings import Settings
from projections.run import run_projections

EVERYTHING = ("manage:instances", "manage:servers", "view:audit")
VIEW_ONLY = ("view:instances", "view:servers", "view:audit")
TEST_HOST_PORTS = HostPorts(20000, 20999)
SERVE_DEADLINE = 30.0

Caller = httpx.AsyncClient
CallerFactory = Callable[..., Awaitable[Caller]]


def mint(
    settings: Settings,
    *,
    org: str = "org-a",
    sub: str = "alice",
    permissions: tuple[str, ...] = EVERYTHING,
    ttl: float = 600.0,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {"sub": sub, "org": org, "permissions": list(permissions), "iat": now}
    payload |= {"exp": now + int(ttl), "name": sub.title(), **claims}
    return jwt.encode(payload, settings.jwt_secret, algorithm="HS256")


@pytest_asyncio.fixture
async def projections(pool: Pool, database_url: str) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_projections(pool, database_url, stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 10)


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[Litestar]:
    """The app with its lifespan entered and left in one task (its anyio cancel scope
    demands it; pytest-asyncio sets fixtures up and tears them down in different tasks)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(serve())
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield app
    finally:
        stop.set()
        await task


@asynccontextmanager
async def http_served(app: Litestar) -> AsyncIterator[str]:
    """The base URL of `app` (its lifespan entered by the caller) served by uvicorn on a free
    loopback port, for clients the ASGI transport cannot stand in for: the MCP SDK's own
    client, and streamed responses read as they arrive."""
    # log_config=None: uvicorn leaves the process's logging, and pytest's capture, alone.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + SERVE_DEADLINE
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, SERVE_DEADLINE)


def client_of(app: Litestar, token: str | None = None) -> httpx.AsyncClient:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


@pytest_asyncio.fixture
async def app(settings: Settings, pool: Pool, projections: None) -> AsyncIterator[Litestar]:
    async with serving(
        create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    ) as app:
        yield app


@pytest_asyncio.fixture
async def caller(app: Litestar, settings: Settings) -> AsyncIterator[CallerFactory]:
    """`await caller(org=..., sub=..., permissions=...)`: an HTTP client with that token."""
    async with AsyncExitStack() as stack:

        async def make(token: str | None = None, **claims: Any) -> Caller:
            client = client_of(app, token or mint(settings, **claims))
            return await stack.enter_async_context(client)

        yield make


@pytest_asyncio.fixture
async def anonymous(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as client:
        yield client


@pytest_asyncio.fixture
async def alice(caller: CallerFactory) -> Caller:
    """May do everything in org-a."""
    return await caller(org="org-a", sub="alice")


@pytest_asyncio.fixture
async def mallory(caller: CallerFactory) -> Caller:
    """May do everything, in another organization."""
    return await caller(org="org-b", sub="mallory")


@pytest_asyncio.fixture
async def viewer(caller: CallerFactory) -> Caller:
    """May only look, in org-a."""
    return await caller(org="org-a", sub="victor", permissions=VIEW_ONLY)


SSH_KEY = "\n".join(
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAA",
        "-----END OPENSSH PRIVATE KEY-----",
    ]
)


def server_body(**changes: Any) -> dict[str, Any]:
    body = {
        "name": "web-1",
        "host": "10.0.0.5",
        "sshUser": "deploy",
        "authMethod": "key",
        "sshPrivateKey": SSH_KEY,
    }
    return body | changes


async def new_server(client: Caller, **changes: Any) -> str:
    response = await client.post("/api/servers", json=server_body(**changes))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def new_instance(client: Caller, server_id: str, **changes: Any) -> dict[str, Any]:
    body = {"name": f"Shop {uuid.uuid4().hex[:6]}", "serverId": server_id} | changes
    response = await client.post("/api/instances", json=body)
    assert response.status_code == 202, response.text
    found: dict[str, Any] = response.json()
    return found


async def record(
    store: EventStore, stream_id: str, *events: DomainEvent, org: str = "org-a"
) -> str:
    """Append what a worker would (e.g. InstanceProvisioned); returns the position to read at
    as the `X-Min-Position` header value."""
    metadata = EventMetadata(
        actor=system_actor("test-worker"), org_id=org, correlation_id=str(uuid.uuid4())
    )
    result = await store.append(stream_id, ANY, list(events), metadata)
    return str(result.position)


async def running_instance(client: Caller, store: EventStore, server_id: str) -> dict[str, Any]:
    """A new instance whose provisioning a worker has completed."""
    created = await new_instance(client, server_id)
    position = await record(
        store,
        instance_stream(created["id"]),
        InstanceProvisioned(instance_id=created["id"], operation_id="op", active_color="blue"),
    )
    response = await client.get(
        f"/api/instances/{created['id']}", headers={"X-Min-Position": position}
    )
    assert response.json()["status"] == "running"
    found: dict[str, Any] = response.json()
    return found


async def stream_types(store: EventStore, stream_id: str) -> list[str]:
    return [event.event_type for event in await store.read_stream(stream_id)]
