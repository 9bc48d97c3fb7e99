"""Concurrent creates never share a slug or a host port; a client reads its own writes."""

from __future__ import annotations

import asyncio

from api_fixtures import (
    TEST_HOST_PORTS,
    Caller,
    CallerFactory,
    client_of,
    mint,
    new_server,
    serving,
)

from api.app import create_app
from events.pool import Pool
from odoofleet.settings import Settings

CONCURRENT = 20


async def test_concurrent_creates_with_one_slug_give_one_202_and_the_rest_409(
    alice: Caller,
) -> None:
    server_id = await new_server(alice)
    body = {"name": "Acme", "serverId": server_id, "slug": "acme"}

    responses = await asyncio.gather(
        *(alice.post("/api/instances", json=body) for _ in range(CONCURRENT))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [409] * (CONCURRENT - 1)
    listed = await alice.get("/api/instances")
    assert [i["slug"] for i in listed.json()["instances"]] == ["acme"]


async def test_concurrent_creates_on_one_server_get_distinct_ports(alice: Caller) -> None:
    server_id = await new_server(alice)

    responses = await asyncio.gather(
        *(
            alice.post("/api/instances", json={"name": f"Shop {n}", "serverId": server_id})
            for n in range(CONCURRENT)
        )
    )

    assert [r.status_code for r in responses] == [202] * CONCURRENT
    ports = [
        port
        for r in responses
        for port in (r.json()["httpPortHost"], r.json()["longpollingPortHost"])
    ]
    assert len(set(ports)) == 2 * CONCURRENT


async def test_creates_through_two_api_processes_still_get_distinct_ports(
    alice: Caller, settings: Settings, pool: Pool
) -> None:
    """Two apps share nothing but the database, as two API replicas would: their creates on
    one server race on the ports stream's expected version, not on an in-process lock."""
    server_id = await new_server(alice)
    token = mint(settings)
    second_app = create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)

    async with serving(second_app), client_of(second_app, token) as other:
        responses = await asyncio.gather(
            *(
                (alice if n % 2 else other).post(
                    "/api/instances", json={"name": f"Shop {n}", "serverId": server_id}
                )
                for n in range(CONCURRENT)
            )
        )

    assert [r.status_code for r in responses] == [202] * CONCURRENT
    ports = {r.json()[key] for r in responses for key in ("httpPortHost", "longpollingPortHost")}
    assert len(ports) == 2 * CONCURRENT


async def test_a_create_is_readable_by_its_author_at_once(alice: Caller) -> None:
    server_id = await new_server(alice)

    for n in range(10):
        created = await alice.post("/api/instances", json={"name": f"S{n}", "serverId": server_id})
        detail = await alice.get(f"/api/instances/{created.json()['id']}")
        listed = await alice.get("/api/instances", params={"limit": 1})
        assert detail.status_code == 200
        assert listed.json()["instances"][0]["id"] == created.json()["id"]


async def test_another_client_reads_a_write_by_naming_its_position(
    alice: Caller, caller: CallerFactory
) -> None:
    colleague = await caller(org="org-a", sub="bob")
    server_id = await new_server(alice)

    for n in range(5):
        created = await alice.post("/api/instances", json={"name": f"S{n}", "serverId": server_id})
        seen = await colleague.get(
            f"/api/instances/{created.json()['id']}",
            headers={"X-Min-Position": created.headers["x-position"]},
        )
        assert seen.status_code == 200


async def test_a_new_server_is_readable_by_its_author_at_once(alice: Caller) -> None:
    server_id = await new_server(alice)

    assert (await alice.get(f"/api/servers/{server_id}")).status_code == 200
