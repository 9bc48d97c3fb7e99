"""API keys (issue 17): shown once, stored as a hash, accepted as a bearer like a JWT with
their own permissions (never more than their creator's), limited to instances when asked,
revoked from the next request on, named in the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from api_fixtures import (
    EVERYTHING,
    TEST_HOST_PORTS,
    Caller,
    CallerFactory,
    client_of,
    new_instance,
    new_server,
    serving,
)
from litestar import Litestar
from waiting import eventually

from api.app import create_app
from events.api_key import api_key_stream
from events.pool import Pool
from events.store import EventStore
from odoofleet.settings import Settings

KEY_ADMIN = (*EVERYTHING, "manage:api-keys")


@pytest.fixture
async def admin(caller: CallerFactory) -> Caller:
    return await caller(org="org-a", sub="alice", permissions=KEY_ADMIN)


async def issue(client: Caller, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/api-keys", json={"name": "ci", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_key_is_shown_once_and_only_its_hash_is_kept(
    admin: Caller, store: EventStore
) -> None:
    created = await issue(admin, permissions=["view:instances"])

    prefix, secret = created["key"].removeprefix("ofk_").split("_", 1)
    assert prefix == created["prefix"] == created["id"].replace("-", "")
    listed = (await admin.get("/api/api-keys")).json()["apiKeys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert "secretHash" not in listed[0]
    assert listed[0]["permissions"] == ["view:instances"]
    assert listed[0]["instanceIds"] is None
    recorded = await store.read_stream(api_key_stream(created["id"]))
    assert secret not in recorded[0].data
    assert secret not in recorded[0].metadata


async def test_a_key_is_accepted_as_a_bearer_with_its_own_permissions(
    app: Litestar, admin: Caller
) -> None:
    server_id = await new_server(admin)
    created = await issue(admin, permissions=["view:instances"])

    async with client_of(app, created["key"]) as key:
        listed = await key.get("/api/instances")
        refused = await key.post("/api/instances", json={"name": "x", "serverId": server_id})
        servers = await key.get("/api/servers")

    assert listed.status_code == 200
    assert refused.status_code == 403
    assert servers.status_code == 403


async def test_a_revoked_key_is_refused_from_the_next_request(app: Litestar, admin: Caller) -> None:
    created = await issue(admin, permissions=["view:instances"])
    async with client_of(app, created["key"]) as key:
        assert (await key.get("/api/instances")).status_code == 200

        revoked = await admin.delete(f"/api/api-keys/{created['id']}")
        after = await key.get("/api/instances")
        again = await admin.delete(f"/api/api-keys/{created['id']}")

    assert revoked.status_code == 204
    assert after.status_code == 401
    assert after.json()["detail"] == "the API key has been revoked"
    assert again.status_code == 204
    assert (await admin.get("/api/api-keys")).json()["apiKeys"] == []


async def test_a_forged_or_expired_key_is_refused(app: Litestar, admin: Caller) -> None:
    created = await issue(admin, permissions=["view:instances"])
    forged = created["key"][:-4] + ("AAAA" if not created["key"].endswith("AAAA") else "BBBB")

    async with client_of(app, forged) as key:
        wrong_secret = await key.get("/api/instances")
    async with client_of(app, "ofk_" + "0" * 32 + "_nothing") as key:
        no_such_key = await key.get("/api/instances")
    past = await admin.post(
        "/api/api-keys",
        json={"name": "old", "permissions": ["view:instances"], "expiresAt": "2020-01-01T00:00Z"},
    )

    assert wrong_secret.status_code == 401
    assert no_such_key.status_code == 401
    assert past.status_code == 400
    assert past.json()["errors"][0]["field"] == "expiresAt"


async def test_a_key_never_holds_more_than_its_creator(caller: CallerFactory) -> None:
    creator = await caller(
        org="org-a", sub="carol", permissions=("view:instances", "manage:api-keys")
    )

    more = await creator.post(
        "/api/api-keys", json={"name": "more", "permissions": ["manage:instances"]}
    )
    implied = await creator.post(
        "/api/api-keys", json={"name": "same", "permissions": ["view:instances"]}
    )
    unknown = await creator.post(
        "/api/api-keys", json={"name": "odd", "permissions": ["root:everything"]}
    )

    assert more.status_code == 403
    assert "manage:instances" in more.json()["detail"]
    assert implied.status_code == 201
    assert unknown.status_code == 400


async def test_a_key_limited_to_instances_sees_and_touches_only_those(
    app: Litestar, admin: Caller
) -> None:
    server_id = await new_server(admin)
    mine = await new_instance(admin, server_id)
    other = await new_instance(admin, server_id)
    created = await issue(admin, permissions=["manage:instances"], instanceIds=[mine["id"]])

    async with client_of(app, created["key"]) as key:
        listed = (await key.get("/api/instances")).json()["instances"]
        seen = await key.get(f"/api/instances/{mine['id']}")
        hidden = await key.get(f"/api/instances/{other['id']}")
        changed = await key.patch(f"/api/instances/{other['id']}", json={"name": "stolen"})
        history = await key.get(f"/api/instances/{other['id']}/events")
        made = await key.post("/api/instances", json={"name": "new", "serverId": server_id})

    assert [i["id"] for i in listed] == [mine["id"]]
    assert seen.status_code == 200
    assert hidden.status_code == 404
    assert changed.status_code == 404
    assert history.status_code in (403, 404)  # the key lacks view:audit; never the history
    assert made.status_code == 403


async def test_a_key_limited_to_instances_cannot_read_organization_wide_history(
    app: Litestar, admin: Caller
) -> None:
    server_id = await new_server(admin)
    mine = await new_instance(admin, server_id)
    created = await issue(admin, permissions=["view:audit"], instanceIds=[mine["id"]])

    async with client_of(app, created["key"]) as key:
        audit = await key.get("/api/audit-logs")
        own_history = await key.get(f"/api/instances/{mine['id']}/events")

    assert audit.status_code == 403
    assert own_history.status_code == 200


async def test_a_limited_key_can_only_issue_keys_within_its_instances(
    app: Litestar, admin: Caller
) -> None:
    server_id = await new_server(admin)
    mine = await new_instance(admin, server_id)
    other = await new_instance(admin, server_id)
    created = await issue(
        admin, permissions=["manage:instances", "manage:api-keys"], instanceIds=[mine["id"]]
    )

    async with client_of(app, created["key"]) as key:
        unlimited = await key.post(
            "/api/api-keys", json={"name": "wide", "permissions": ["view:instances"]}
        )
        beyond = await key.post(
            "/api/api-keys",
            json={"name": "far", "permissions": ["view:instances"], "instanceIds": [other["id"]]},
        )
        within = await key.post(
            "/api/api-keys",
            json={"name": "near", "permissions": ["view:instances"], "instanceIds": [mine["id"]]},
        )

    assert unlimited.status_code == 403
    assert beyond.status_code == 400
    assert within.status_code == 201


async def test_the_audit_trail_names_the_key(app: Litestar, admin: Caller) -> None:
    server_id = await new_server(admin)
    instance = await new_instance(admin, server_id)
    created = await issue(admin, name="deploy-bot", permissions=["manage:instances"])

    async with client_of(app, created["key"]) as key:
        changed = await key.patch(f"/api/instances/{instance['id']}", json={"name": "Renamed"})
    assert changed.status_code == 200, changed.text
    audit = await admin.get(
        "/api/audit-logs",
        params={"action": "instance.updated", "resource_id": instance["id"]},
        headers={"X-Min-Position": changed.headers["x-position"]},
    )

    [entry] = audit.json()["items"]
    assert entry["userId"] == f"apikey:{created['id']}"
    assert entry["userName"] == "deploy-bot"


async def test_issuing_and_revoking_a_key_are_audited_without_its_secret(admin: Caller) -> None:
    created = await issue(admin, name="deploy-bot", permissions=["view:instances"])
    assert (await admin.delete(f"/api/api-keys/{created['id']}")).status_code == 204
    found: list[dict[str, Any]] = []

    async def audited() -> bool:
        reply = await admin.get("/api/audit-logs", params={"resource_type": "api_key"})
        assert reply.status_code == 200, reply.text
        assert created["key"].split("_")[-1] not in reply.text
        found[:] = reply.json()["items"]
        return len(found) == 2

    await eventually(audited, message="the key's creation and revocation in the audit trail")
    assert [(e["action"], e["resourceId"]) for e in found] == [
        ("api_key.revoked", created["id"]),
        ("api_key.created", created["id"]),
    ]
    assert [e["userId"] for e in found] == ["alice", "alice"]
    assert found[1]["afterState"]["name"] == "deploy-bot"
    assert found[1]["afterState"]["permissions"] == ["view:instances"]
    assert "secret_hash" not in found[1]["afterState"]
    assert set(found[0]["afterState"]) == {"revoked_at"}


async def test_when_a_key_was_last_used_is_written_in_batches(app: Litestar, admin: Caller) -> None:
    created = await issue(admin, permissions=["view:instances"])
    async with client_of(app, created["key"]) as key:
        for _ in range(3):
            assert (await key.get("/api/instances")).status_code == 200

    before = (await admin.get("/api/api-keys")).json()["apiKeys"][0]["lastUsedAt"]
    await app.state.api_keys.usage.flush()
    after = (await admin.get("/api/api-keys")).json()["apiKeys"][0]["lastUsedAt"]

    assert before is None  # nothing written per request
    assert after is not None


async def test_another_organizations_key_is_404_and_unlisted(
    admin: Caller, caller: CallerFactory
) -> None:
    created = await issue(admin, permissions=["view:instances"])
    mallory = await caller(org="org-b", sub="mallory", permissions=KEY_ADMIN)

    revoked = await mallory.delete(f"/api/api-keys/{created['id']}")
    listed = (await mallory.get("/api/api-keys")).json()["apiKeys"]

    assert revoked.status_code == 404
    assert listed == []


async def test_managing_keys_needs_its_permission(caller: CallerFactory) -> None:
    plain = await caller(org="org-a", sub="bob", permissions=EVERYTHING)

    assert (await plain.get("/api/api-keys")).status_code == 403
    assert (
        await plain.post("/api/api-keys", json={"name": "x", "permissions": ["view:instances"]})
    ).status_code == 403


async def test_another_api_process_accepts_a_new_key_and_refuses_a_revoked_one_at_once(
    admin: Caller, settings: Settings, pool: Pool
) -> None:
    created = await issue(admin, permissions=["view:instances"])
    other_app = create_app(settings.for_api(), pool=pool, host_ports=TEST_HOST_PORTS)
    async with serving(other_app), client_of(other_app, created["key"]) as elsewhere:
        first = await elsewhere.get("/api/instances")
        assert (await admin.delete(f"/api/api-keys/{created['id']}")).status_code == 204
        after = await elsewhere.get("/api/instances")

    assert first.status_code == 200
    assert after.status_code == 401
