"""Fifty concurrent writes to one instance: only documented answers, and no lost update."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable

import httpx
from api_fixtures import Caller, new_server, running_instance
from waiting import eventually

from commands.instance_state import evolve, initial_state
from events.instance import instance_stream
from events.registry import EventRegistry
from events.secrets import Vault
from events.store import EventStore

WRITERS = 50
ACTIONS = ("stop", "start", "restart")


def _write(alice: Caller, path: str, i: int, current: str) -> Awaitable[httpx.Response]:
    """The i-th writer: a PATCH with the current ETag, a stale one or none, or a control."""
    match i % 4:
        case 0:
            return alice.patch(path, json={"name": f"n{i}"}, headers={"If-Match": current})
        case 1:
            return alice.patch(path, json={"addonsPath": f"/a/{i}"}, headers={"If-Match": '"1"'})
        case 2:
            return alice.patch(path, json={"name": f"n{i}", "mcpWriteEnabled": i % 3 == 0})
        case _:
            return alice.post(f"{path}/control", json={"action": ACTIONS[i % 3]})


async def test_fifty_concurrent_writes_answer_as_documented_and_lose_no_update(
    alice: Caller, store: EventStore, registry: EventRegistry, vault: Vault
):
    created = await running_instance(alice, store, await new_server(alice))
    path = f"/api/instances/{created['id']}"
    current = (await alice.get(path)).headers["ETag"]

    answers = await asyncio.gather(*(_write(alice, path, i, current) for i in range(WRITERS)))

    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 202, 409, 412}
    assert {200, 412} <= set(statuses)
    recorded = await store.read_stream(instance_stream(created["id"]))
    # Every PATCH renames or re-paths the instance, so each 200 must have recorded one update.
    updates = [event for event in recorded if event.event_type == "InstanceUpdated"]
    assert len(updates) == statuses.count(200)
    decoded = [registry.decode(e.event_type, e.schema_version, e.data) for e in recorded]
    folded = functools.reduce(evolve, decoded, initial_state())

    async def caught_up() -> bool:
        return (await alice.get(path)).json()["version"] == recorded[-1].version

    await eventually(caught_up, message="the read model at the stream's version")
    shown = (await alice.get(path, params={"reveal": "envVars"})).json()
    facts = folded.facts
    assert shown["status"] == folded.status
    assert shown["name"] == facts.name
    assert shown["addonsPath"] == facts.addons_path
    assert shown["mcpWriteEnabled"] == facts.mcp_write_enabled
    assert shown["envVars"] == await vault.open_all(instance_stream(created["id"]), facts.env_vars)
