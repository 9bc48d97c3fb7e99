"""Idempotency-Key: a retried write returns the first response and changes nothing."""

from __future__ import annotations

import json

from api_fixtures import Caller, CallerFactory, new_server, running_instance, server_body

from events.instance import instance_stream
from events.pool import Pool
from events.secrets import Vault
from events.server import server_stream
from events.store import EventStore


async def event_count(store: EventStore) -> int:
    head = await store.head()
    return head.position


async def test_a_repeated_create_returns_the_first_response_and_appends_nothing(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    body = {"name": "Acme", "serverId": server_id}
    key = {"Idempotency-Key": "create-acme-1"}
    first = await alice.post("/api/instances", json=body, headers=key)
    events_after_first = await event_count(store)

    again = await alice.post("/api/instances", json=body, headers=key)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await event_count(store) == events_after_first


async def test_the_same_body_in_another_key_order_is_the_same_request(alice: Caller) -> None:
    server_id = await new_server(alice)
    key = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    first = await alice.post(
        "/api/instances", content=json.dumps({"name": "A", "serverId": server_id}), headers=key
    )

    again = await alice.post(
        "/api/instances", content=json.dumps({"serverId": server_id, "name": "A"}), headers=key
    )

    assert again.json()["id"] == first.json()["id"]


async def test_the_same_key_with_another_body_is_422(alice: Caller) -> None:
    server_id = await new_server(alice)
    key = {"Idempotency-Key": "k-1"}
    await alice.post("/api/instances", json={"name": "A", "serverId": server_id}, headers=key)

    other = await alice.post(
        "/api/instances", json={"name": "B", "serverId": server_id}, headers=key
    )

    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"


async def test_keys_are_scoped_per_organization(alice: Caller, mallory: Caller) -> None:
    key = {"Idempotency-Key": "shared-key"}

    mine = await alice.post("/api/servers", json=server_body(), headers=key)
    theirs = await mallory.post("/api/servers", json=server_body(), headers=key)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]


async def test_a_repeated_server_registration_registers_once(alice: Caller) -> None:
    key = {"Idempotency-Key": "srv-1"}
    first = await alice.post("/api/servers", json=server_body(), headers=key)

    again = await alice.post("/api/servers", json=server_body(), headers=key)

    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert len((await alice.get("/api/servers")).json()["servers"]) == 1


async def test_a_repeated_control_requests_the_action_once(
    alice: Caller, store: EventStore
) -> None:
    server_id = await new_server(alice)
    running = await running_instance(alice, store, server_id)
    url = f"/api/instances/{running['id']}/control"
    key = {"Idempotency-Key": "stop-1"}

    first = await alice.post(url, json={"action": "stop"}, headers=key)
    again = await alice.post(url, json={"action": "stop"}, headers=key)

    assert (first.status_code, again.status_code) == (202, 202)
    types = [e.event_type for e in await store.read_stream(instance_stream(running["id"]))]
    assert types.count("ActionRequested") == 1


async def test_a_refused_request_does_not_burn_its_key(alice: Caller) -> None:
    server_id = await new_server(alice)
    key = {"Idempotency-Key": "slug-1"}
    await alice.post("/api/instances", json={"name": "x", "serverId": server_id, "slug": "abc"})
    body = {"name": "y", "serverId": server_id, "slug": "abc"}

    refused = await alice.post("/api/instances", json=body, headers=key)
    again = await alice.post("/api/instances", json=body, headers=key)

    assert (refused.status_code, again.status_code) == (409, 409)


async def test_an_unusable_key_is_400(alice: Caller) -> None:
    server_id = await new_server(alice)

    response = await alice.post(
        "/api/instances",
        json={"name": "x", "serverId": server_id},
        headers={"Idempotency-Key": "bad key with spaces"},
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_another_user_s_replay_of_a_key_is_their_own_new_request(
    alice: Caller, caller: CallerFactory, store: EventStore
) -> None:
    bob = await caller(org="org-a", sub="bob")
    key = {"Idempotency-Key": "register-web"}
    mine = await alice.post("/api/servers", json=server_body(), headers=key)

    theirs = await bob.post("/api/servers", json=server_body(), headers=key)

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    registered, *_ = await store.read_stream(server_stream(theirs.json()["id"]))
    assert json.loads(registered.metadata)["actor"]["id"] == "bob"


async def test_a_used_and_an_unused_key_answer_another_user_alike(
    alice: Caller, caller: CallerFactory
) -> None:
    """No oracle: another user cannot tell which keys were used (it was 422 against 201)."""
    bob = await caller(org="org-a", sub="bob")
    await alice.post("/api/servers", json=server_body(), headers={"Idempotency-Key": "used"})

    used = await bob.post(
        "/api/servers", json=server_body(name="b-1"), headers={"Idempotency-Key": "used"}
    )
    unused = await bob.post(
        "/api/servers", json=server_body(name="b-1"), headers={"Idempotency-Key": "unused"}
    )

    assert (used.status_code, unused.status_code) == (201, 201)
    assert used.headers.keys() - {"x-request-id", "location", "x-position"} == (
        unused.headers.keys() - {"x-request-id", "location", "x-position"}
    )


async def test_a_replay_shows_the_instance_as_its_write_left_it(alice: Caller) -> None:
    server_id = await new_server(alice)
    body = {"name": "Acme", "serverId": server_id, "envVars": {"SMTP_PASSWORD": "first"}}
    key = {"Idempotency-Key": "create-acme"}
    first = await alice.post("/api/instances", json=body, headers=key)
    changed = await alice.patch(
        f"/api/instances/{first.json()['id']}", json={"envVars": {"SMTP_PASSWORD": "second"}}
    )

    again = await alice.post("/api/instances", json=body, headers=key)

    assert changed.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]


async def test_a_key_of_an_instance_whose_secrets_are_forgotten_is_purged(
    alice: Caller, vault: Vault, pool: Pool
) -> None:
    server_id = await new_server(alice)
    body = {"name": "Acme", "serverId": server_id, "envVars": {"SMTP_PASSWORD": "s3cr3t-smtp"}}
    created = await alice.post("/api/instances", json=body, headers={"Idempotency-Key": "c"})
    stream_id = instance_stream(created.json()["id"])

    await vault.forget(stream_id)

    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM idempotency_keys WHERE stream_id = %s", (stream_id,)
        )
        assert await cur.fetchone() == (0,)
