"""Reservations across organizations (issue 13, item 6): an organization's slugs are its own,
whatever the organization ids and slugs look like, and host names are unique across the
installation without a 409 that would tell of another organization's instance."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

from api_fixtures import Caller, CallerFactory, new_server, record
from builders import NOW, create_command, meta

from commands.instance import decide
from commands.instance_state import initial_state
from commands.reservation import ReleaseReservations
from commands.reservation_release import release_reservations
from events.instance import RemovalFailed, RemovalRequested, instance_stream
from events.registry import EventRegistry
from events.reservation import SlugReleased, SlugReserved
from events.store import ANY, EventStore

BASE = "odoo.localhost"


def old_slug_stream(org_id: str, slug: str) -> str:
    """The stream id odoofleet reserved slugs under before the fix (events/reservation.py)."""
    return f"slug-{org_id}-{slug}"


async def create(client: Caller, server_id: str, slug: str) -> Any:
    return await client.post(
        "/api/instances", json={"name": f"Shop {slug}", "serverId": server_id, "slug": slug}
    )


async def org_with_server(caller: CallerFactory, org: str) -> tuple[Caller, str]:
    client = await caller(org=org, sub=f"admin-of-{org}")
    return client, await new_server(client)


async def release(
    store: EventStore, registry: EventRegistry, org: str, instance: dict[str, Any]
) -> str:
    """What the teardown saga does last for a removed instance."""
    command = ReleaseReservations(
        instance_id=instance["id"],
        slug=instance["slug"],
        subdomain=instance["autoSubdomain"],
        server_id=instance["serverId"],
    )
    return await release_reservations(store, command, meta(org))


async def test_organization_and_slug_split_elsewhere_at_a_hyphen_are_independent(
    caller: CallerFactory,
) -> None:
    acme_corp, acme_corp_server = await org_with_server(caller, "acme-corp")
    acme, acme_server = await org_with_server(caller, "acme")

    first = await create(acme_corp, acme_corp_server, "shop")
    second = await create(acme, acme_server, "corp-shop")

    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text


async def test_a_second_organization_with_a_slug_gets_its_own_host_name_not_a_409(
    caller: CallerFactory,
) -> None:
    org_a, server_a = await org_with_server(caller, "org-a")
    org_b, server_b = await org_with_server(caller, "org-b")

    first = await create(org_a, server_a, "shop")
    second = await create(org_b, server_b, "shop")

    assert (first.status_code, second.status_code) == (202, 202), second.text
    assert first.json()["autoSubdomain"] == f"shop.{BASE}"
    assert second.json()["autoSubdomain"] not in (f"shop.{BASE}", first.json()["autoSubdomain"])
    assert second.json()["autoSubdomain"].endswith(f".{BASE}")
    assert second.json()["slug"] == "shop"


async def test_a_released_host_name_goes_to_the_next_instance_with_the_slug(
    caller: CallerFactory, store: EventStore, registry: EventRegistry
) -> None:
    org_a, server_a = await org_with_server(caller, "org-a")
    org_b, server_b = await org_with_server(caller, "org-b")
    org_c, server_c = await org_with_server(caller, "org-c")
    first = (await create(org_a, server_a, "shop")).json()
    await create(org_b, server_b, "shop")

    released = await release(store, registry, "org-a", first)
    third = await create(org_c, server_c, "shop")

    assert released == f"released: host ports, slug shop, subdomain shop.{BASE}"
    assert third.json()["autoSubdomain"] == f"shop.{BASE}"


async def test_a_host_name_first_held_by_another_organization_is_released_too(
    caller: CallerFactory, store: EventStore, registry: EventRegistry
) -> None:
    org_a, server_a = await org_with_server(caller, "org-a")
    org_c, server_c = await org_with_server(caller, "org-c")
    first = (await create(org_a, server_a, "shop")).json()
    await release(store, registry, "org-a", first)
    second = (await create(org_c, server_c, "shop")).json()

    released = await release(store, registry, "org-c", second)
    third = await create(org_a, server_a, "shop")

    assert released == f"released: host ports, slug shop, subdomain shop.{BASE}"
    assert third.json()["autoSubdomain"] == f"shop.{BASE}"


async def test_a_forced_removal_gives_the_host_name_back_too(
    caller: CallerFactory, store: EventStore, registry: EventRegistry
) -> None:
    org_a, server_a = await org_with_server(caller, "org-a")
    org_b, server_b = await org_with_server(caller, "org-b")
    first = (await create(org_a, server_a, "shop")).json()
    await org_a.delete(f"/api/instances/{first['id']}")
    stream_id = instance_stream(first["id"])
    removal = registry.decode_all(await store.read_stream(stream_id))[-1]
    assert isinstance(removal, RemovalRequested)
    failed = RemovalFailed(
        instance_id=first["id"], operation_id=removal.operation_id, step="db-down", message="no"
    )
    await record(store, stream_id, failed)

    forced = await org_a.delete(f"/api/instances/{first['id']}", params={"force": "true"})
    second = await create(org_b, server_b, "shop")

    assert forced.status_code == 204, forced.text
    assert second.json()["autoSubdomain"] == f"shop.{BASE}"


async def test_a_slug_taken_in_the_organization_is_still_409(caller: CallerFactory) -> None:
    org_a, server_a = await org_with_server(caller, "org-a")
    await create(org_a, server_a, "shop")

    again = await create(org_a, server_a, "shop")

    assert again.status_code == 409
    assert again.json()["type"].endswith("slug-taken")


async def test_reservations_written_under_the_old_stream_ids_still_hold_and_release(
    caller: CallerFactory, store: EventStore, registry: EventRegistry
) -> None:
    # The log as the code before the fix left it: in the one stream `slug-acme-corp-shop`,
    # acme's `corp-shop` reserved and released, then acme-corp's `shop` reserved (its
    # instance has `shop.odoo.localhost`).
    shared = old_slug_stream("acme-corp", "shop")
    assert shared == old_slug_stream("acme", "corp-shop")
    gone, old = str(uuid.uuid4()), str(uuid.uuid4())
    await store.append(
        shared, ANY, [SlugReserved(slug="corp-shop", instance_id=gone)], meta("acme")
    )
    await store.append(
        shared, ANY, [SlugReleased(slug="corp-shop", instance_id=gone)], meta("acme")
    )
    await store.append(shared, ANY, [SlugReserved(slug="shop", instance_id=old)], meta("acme-corp"))
    acme_corp, acme_corp_server = await org_with_server(caller, "acme-corp")
    acme, acme_server = await org_with_server(caller, "acme")
    other, other_server = await org_with_server(caller, "other")

    still_held = await create(acme_corp, acme_corp_server, "shop")
    other_pair = await create(acme, acme_server, "corp-shop")
    same_slug_elsewhere = await create(other, other_server, "shop")

    assert still_held.status_code == 409
    assert other_pair.status_code == 202, other_pair.text
    assert same_slug_elsewhere.status_code == 202
    assert same_slug_elsewhere.json()["autoSubdomain"] != f"shop.{BASE}"

    old_instance = {
        "id": old,
        "serverId": str(uuid.uuid4()),
        "slug": "shop",
        "autoSubdomain": f"shop.{BASE}",
    }
    released = await release(store, registry, "acme-corp", old_instance)
    again = await create(acme_corp, acme_corp_server, "shop")

    assert released == "released: slug shop"
    assert again.status_code == 202, again.text
    assert again.json()["autoSubdomain"] == f"shop.{BASE}"
    assert await store.stream_version(shared) == 3  # nothing appended to the old stream


async def test_a_forced_removal_releases_a_slug_reserved_under_its_old_stream_id(
    caller: CallerFactory, store: EventStore
) -> None:
    org_a, server_a = await org_with_server(caller, "org-a")
    old = str(uuid.uuid4())
    created = create_command(
        instance_id=old, slug="shop", server_id=server_a, auto_subdomain=f"shop.{BASE}"
    )
    removal = [
        RemovalRequested(instance_id=old, operation_id="op-rm"),
        RemovalFailed(instance_id=old, operation_id="op-rm", step="db-down", message="no"),
    ]
    # An instance of the code before the fix, whose teardown failed.
    await record(
        store, old_slug_stream("org-a", "shop"), SlugReserved(slug="shop", instance_id=old)
    )
    await record(store, instance_stream(old), *decide(created, initial_state(), NOW), *removal)
    held = await create(org_a, server_a, "shop")

    forced = await org_a.delete(f"/api/instances/{old}", params={"force": "true"})
    again = await create(org_a, server_a, "shop")

    assert held.status_code == 409
    assert forced.status_code == 204, forced.text
    assert again.status_code == 202, again.text
    assert again.json()["autoSubdomain"] == f"shop.{BASE}"


async def test_many_organizations_and_hyphenated_slugs_created_at_once_are_all_independent(
    caller: CallerFactory,
) -> None:
    orgs = ["acme", "acme-corp", "acme-corp-eu", "corp", "x-acme"]
    slugs = ["shop", "corp-shop", "corp-eu-shop", "eu-shop"]
    servers = {org: await org_with_server(caller, org) for org in orgs}
    pairs = list(itertools.product(orgs, slugs))
    assert len({old_slug_stream(org, slug) for org, slug in pairs}) < len(pairs)

    answers = await asyncio.gather(
        *(create(*servers[org], slug) for org, slug in pairs)  # every pair at once
    )
    repeats = await asyncio.gather(*(create(*servers[org], slug) for org, slug in pairs))

    assert [answer.status_code for answer in answers] == [202] * len(pairs)
    hosts = [answer.json()["autoSubdomain"] for answer in answers]
    assert len(set(hosts)) == len(pairs)
    assert {f"{slug}.{BASE}" for slug in slugs} <= set(hosts)
    assert [answer.status_code for answer in repeats] == [409] * len(pairs)
