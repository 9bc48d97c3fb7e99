"""A saga's outcome through the command runner against real PostgreSQL: appended once however
often it is sent, and never after a removal overtook its operation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from builders import NOW, create_command, meta

from commands.instance import decide
from commands.instance_outcomes import (
    RecordActionSucceeded,
    RecordOutcome,
    RecordProvisioned,
    decide_outcome,
)
from commands.instance_state import fold, initial_state
from commands.refusals import OutcomeOverruled
from commands.runner import event_ids, execute_command
from events.instance import InstanceProvisioned, RemovalRequested, instance_stream
from events.store import NO_STREAM, EventStore


async def created(store: EventStore) -> tuple[str, str]:
    instance_id = str(uuid.uuid4())
    stream_id = instance_stream(instance_id)
    events = decide(create_command(instance_id=instance_id), initial_state(), NOW)
    await store.append(stream_id, NO_STREAM, events, meta())
    return instance_id, stream_id


async def record(store: EventStore, stream_id: str, command: RecordOutcome, key: str) -> int | None:
    outcome = await execute_command(
        store,
        stream_id,
        fold,
        decide_outcome,
        command,
        datetime.now(UTC),
        meta(),
        idempotency_key=key,
    )
    return outcome.position


async def test_an_outcome_sent_twice_is_appended_once(store: EventStore) -> None:
    _, stream_id = await created(store)
    command = RecordProvisioned(operation_id="op-provision", active_color="blue")

    first = await record(store, stream_id, command, "op-provision/outcome")
    again = await record(store, stream_id, command, "op-provision/outcome")

    recorded = await store.read_stream(stream_id)
    assert [r.event_type for r in recorded].count("InstanceProvisioned") == 1
    assert first is not None
    assert again is None
    # The outcome's events (InstanceProvisioned, and the MCP credentials it asks for) take
    # the ids derived from its key.
    assert [r.event_id for r in recorded[-2:]] == event_ids("op-provision/outcome", 2)


async def test_an_outcome_already_stored_under_its_key_is_not_stored_again(
    store: EventStore,
) -> None:
    """What the decider cannot tell (an outcome appended by a worker whose reply was lost,
    sent again on a stream that moved on) the derived event ids still do."""
    instance_id, stream_id = await created(store)
    provisioned = InstanceProvisioned(
        instance_id=instance_id, operation_id="op-provision", active_color="blue"
    )
    ids = event_ids("op-provision/outcome", 1)
    first = await store.append(stream_id, 2, [provisioned], meta(), ids)

    again = await store.append(stream_id, 2, [provisioned], meta(), ids)

    assert again == first
    assert len(await store.read_stream(stream_id)) == 3


async def test_a_late_outcome_after_a_removal_is_refused_and_appends_nothing(
    store: EventStore,
) -> None:
    instance_id, stream_id = await created(store)
    removal = RemovalRequested(instance_id=instance_id, operation_id="op-rm")
    await store.append(stream_id, 2, [removal], meta())
    command = RecordActionSucceeded(operation_id="op-start", action="start")

    with pytest.raises(OutcomeOverruled):
        await record(store, stream_id, command, "op-start/outcome")

    assert len(await store.read_stream(stream_id)) == 3
