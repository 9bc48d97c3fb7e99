"""envVars values are masked for every caller unless a manage caller asks for them with
`?reveal=envVars`, which is audited (issue 17, item 4)."""

from __future__ import annotations

import json

from api_fixtures import Caller, new_server, stream_types

from events.instance import instance_stream
from events.secrets import MASK
from events.store import EventStore

ENV = {"SMTP_PASSWORD": "smtp-pass-8d1e", "API_TOKEN": "tok-77aa"}
REVEAL = {"reveal": "envVars"}


async def _created(alice: Caller) -> tuple[str, dict[str, str]]:
    server_id = await new_server(alice)
    body = {"name": "Shop", "serverId": server_id, "envVars": ENV}
    created = await alice.post("/api/instances", json=body, headers={"Idempotency-Key": "c-1"})
    assert created.status_code == 202, created.text
    return created.json()["id"], {"X-Min-Position": created.headers["x-position"]}


async def test_a_manage_caller_sees_masked_values_in_every_answer_by_default(
    alice: Caller,
) -> None:
    server_id = await new_server(alice)
    body = {"name": "Shop", "serverId": server_id, "envVars": ENV}
    key = {"Idempotency-Key": "c-1"}
    created = await alice.post("/api/instances", json=body, headers=key)
    path = f"/api/instances/{created.json()['id']}"
    after = {"X-Min-Position": created.headers["x-position"]}

    answers = [
        created,
        await alice.post("/api/instances", json=body, headers=key),
        await alice.get(path, headers=after),
        await alice.get(path, params={"asOf": "2999-01-01T00:00:00Z"}),
        await alice.get("/api/instances", headers=after),
        await alice.patch(path, json={"envVars": ENV | {"NEW": "new-value-31"}}),
        await alice.post(f"{path}/control", json={"action": "stop"}),
    ]

    assert [a.status_code for a in answers] == [202, 202, 200, 200, 200, 200, 409]
    for answer in answers[:-1]:
        shown = answer.json()
        instance = shown["instances"][0] if "instances" in shown else shown
        assert set(instance["envVars"].values()) == {MASK}, answer.request.url
    assert not [v for v in [*ENV.values(), "new-value-31"] for a in answers if v in a.text]


async def test_reveal_shows_the_values_to_a_manage_caller_and_is_audited(
    alice: Caller, store: EventStore
) -> None:
    instance_id, after = await _created(alice)
    path = f"/api/instances/{instance_id}"

    revealed = await alice.get(path, headers=after, params=REVEAL)
    in_the_past = await alice.get(path, params=REVEAL | {"asOf": "2999-01-01T00:00:00Z"})

    assert revealed.status_code == in_the_past.status_code == 200
    assert revealed.json()["envVars"] == in_the_past.json()["envVars"] == ENV
    assert revealed.headers["cache-control"] == "no-store"
    audit = await alice.get("/api/audit-logs", params={"action": "instance.secrets_revealed"})
    items = audit.json()["items"]
    assert [(i["resourceId"], i["userId"]) for i in items] == [(instance_id, "alice")] * 2
    recorded = await store.read_stream(instance_stream(instance_id))
    reveals = [json.loads(e.data) for e in recorded if e.event_type == "EnvVarsRevealed"]
    assert [r["names"] for r in reveals] == [sorted(ENV)] * 2
    assert not [v for v in ENV.values() for e in recorded if v in e.data]


async def test_a_view_only_caller_may_not_reveal_and_nothing_is_recorded(
    alice: Caller, viewer: Caller, store: EventStore
) -> None:
    instance_id, after = await _created(alice)
    before = await stream_types(store, instance_stream(instance_id))

    refused = await viewer.get(f"/api/instances/{instance_id}", headers=after, params=REVEAL)

    assert refused.status_code == 403
    assert await stream_types(store, instance_stream(instance_id)) == before


async def test_revealing_another_organization_s_instance_is_404_and_records_nothing(
    alice: Caller, mallory: Caller, store: EventStore
) -> None:
    instance_id, _ = await _created(alice)
    before = await stream_types(store, instance_stream(instance_id))

    answer = await mallory.get(f"/api/instances/{instance_id}", params=REVEAL)

    assert answer.status_code == 404
    assert await stream_types(store, instance_stream(instance_id)) == before


async def test_only_env_vars_can_be_revealed(alice: Caller) -> None:
    instance_id, _ = await _created(alice)

    answer = await alice.get(f"/api/instances/{instance_id}", params={"reveal": "password"})

    assert answer.status_code == 400
