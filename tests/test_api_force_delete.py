"""DELETE ?force=true through HTTP: only a removal that failed can be forced; a forced
removal frees the slug, host name and ports, shreds the secrets and is audited."""

from __future__ import annotations

import json
from typing import Any

from api_fixtures import Caller, new_instance, new_server, record, running_instance, stream_types

from events.instance import InstanceProvisioned, RemovalAbandoned, RemovalFailed, instance_stream
from events.reservation import ports_stream
from events.secrets import MASK, Sealed, Vault
from events.store import EventStore


def path(instance: dict[str, Any]) -> str:
    return f"/api/instances/{instance['id']}"


async def failed_removal(
    alice: Caller, store: EventStore, server_id: str, **changes: Any
) -> dict[str, Any]:
    """A running instance whose teardown failed once (the worker would retry it)."""
    created = await new_instance(alice, server_id, **changes)
    instance = await running_instance_from(alice, store, created)
    assert (await alice.delete(path(instance))).status_code == 202
    failure = RemovalFailed(
        instance_id=instance["id"], operation_id="op-rm", step="db-down", message="timeout"
    )
    position = await record(store, instance_stream(instance["id"]), failure)
    read = await alice.get(path(instance), headers={"X-Min-Position": position})
    found: dict[str, Any] = read.json()
    return found


async def running_instance_from(
    alice: Caller, store: EventStore, created: dict[str, Any]
) -> dict[str, Any]:
    position = await record(
        store,
        instance_stream(created["id"]),
        InstanceProvisioned(instance_id=created["id"], operation_id="op", active_color="blue"),
    )
    found: dict[str, Any] = (
        await alice.get(path(created), headers={"X-Min-Position": position})
    ).json()
    return found


async def test_a_failed_teardown_shows_removing_with_the_step_and_a_retry(
    alice: Caller, store: EventStore
) -> None:
    instance = await failed_removal(alice, store, await new_server(alice))

    assert instance["status"] == "removing"
    assert "db-down" in instance["statusMessage"]
    assert "timeout" in instance["statusMessage"]
    assert "retried" in instance["statusMessage"]


async def test_a_teardown_given_up_shows_failed_with_the_reason(
    alice: Caller, store: EventStore
) -> None:
    instance = await failed_removal(alice, store, await new_server(alice))
    given_up = RemovalAbandoned(
        instance_id=instance["id"], operation_id="op-rm", step="db-down", message="timeout"
    )
    position = await record(store, instance_stream(instance["id"]), given_up)

    read = (await alice.get(path(instance), headers={"X-Min-Position": position})).json()
    control = await alice.post(f"{path(instance)}/control", json={"action": "start"})

    assert read["status"] == "failed"
    assert "db-down" in read["statusMessage"]
    assert "force=true" in read["statusMessage"]
    assert control.status_code == 409


async def test_forcing_a_failed_removal_removes_the_instance_and_frees_what_it_held(
    alice: Caller, store: EventStore, vault: Vault
) -> None:
    server_id = await new_server(alice)
    instance = await failed_removal(alice, store, server_id, slug="shop")
    created = (await store.read_stream(instance_stream(instance["id"])))[0]

    response = await alice.delete(path(instance), params={"force": "true"})

    assert response.status_code == 204, response.text
    assert int(response.headers["X-Position"]) > 0
    assert (await alice.get(path(instance))).status_code == 404
    assert (await stream_types(store, instance_stream(instance["id"])))[-1] == (
        "InstanceRemovalForced"
    )
    assert (await stream_types(store, ports_stream(server_id)))[-1] == "PortsReleased"
    sealed = Sealed(json.loads(created.data)["admin_user_password"]["sealed"])
    assert await vault.open(instance_stream(instance["id"]), sealed) == MASK
    again = await new_instance(alice, server_id, slug="shop")
    assert again["autoSubdomain"] == instance["autoSubdomain"]
    assert again["httpPortHost"] == instance["httpPortHost"]


async def test_a_forced_removal_is_audited_with_the_actor(alice: Caller, store: EventStore) -> None:
    instance = await failed_removal(alice, store, await new_server(alice))
    await alice.delete(path(instance), params={"force": "true"})

    audit = await alice.get("/api/audit-logs", params={"action": "instance.force_deleted"})

    (item,) = audit.json()["items"]
    assert (item["resourceId"], item["userId"], item["eventType"]) == (
        instance["id"],
        "alice",
        "InstanceRemovalForced",
    )


async def test_a_given_up_removal_can_be_forced(alice: Caller, store: EventStore) -> None:
    instance = await failed_removal(alice, store, await new_server(alice))
    given_up = RemovalAbandoned(
        instance_id=instance["id"], operation_id="op-rm", step="verify", message="left over"
    )
    await record(store, instance_stream(instance["id"]), given_up)

    response = await alice.delete(path(instance), params={"force": "true"})

    assert response.status_code == 204


async def test_forcing_while_the_teardown_still_runs_is_a_conflict(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))
    await alice.delete(path(instance))

    response = await alice.delete(path(instance), params={"force": "true"})

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("removal-not-failed")
    assert "a removal is running" in problem["detail"]
    assert (await stream_types(store, instance_stream(instance["id"])))[-1] == "RemovalRequested"


async def test_forcing_an_instance_not_being_removed_is_a_conflict(
    alice: Caller, store: EventStore
) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    response = await alice.delete(path(instance), params={"force": "true"})

    assert response.status_code == 409
    assert "without force" in response.json()["detail"]


async def test_forcing_needs_manage_and_the_same_organization(
    alice: Caller, viewer: Caller, mallory: Caller, store: EventStore
) -> None:
    instance = await failed_removal(alice, store, await new_server(alice))

    as_viewer = await viewer.delete(path(instance), params={"force": "true"})
    as_other = await mallory.delete(path(instance), params={"force": "true"})

    assert (as_viewer.status_code, as_other.status_code) == (403, 404)
    assert (await alice.get(path(instance))).json()["status"] == "removing"


async def test_force_must_be_a_boolean(alice: Caller, store: EventStore) -> None:
    instance = await running_instance(alice, store, await new_server(alice))

    response = await alice.delete(path(instance), params={"force": "maybe"})

    assert response.status_code == 400
