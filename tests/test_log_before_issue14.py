"""A log written by the code before issue 14 (one definition of an instance's settings) still
reads: every event decodes, every projection rebuilds to the read models that code built, and
the API answers what it answered then (tests/fixtures/write_log_before_issue14.py made them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from api_fixtures import Caller
from fixture_log import (
    FIXTURE_LOG,
    FIXTURE_READ_MODELS,
    FIXTURE_WIRE,
    dump_read_models,
    dump_wire,
    load_log,
)
from projection_fixtures import catch_up

from commands.instance_state import Absent, InstanceState, evolve, initial_state
from events.pool import Pool
from events.registry import EventRegistry
from events.store import EventStore

FIXTURES: Final = Path(__file__).parent / "fixtures"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


async def test_every_projection_rebuilds_from_the_old_log_to_the_old_read_models(
    pool: Pool,
) -> None:
    await load_log(pool, _fixture(FIXTURE_LOG))

    await catch_up(pool)

    old = json.loads(_fixture(FIXTURE_READ_MODELS))
    assert _old_fields(json.loads(await dump_read_models(pool)), old) == old


async def test_the_api_answers_from_the_old_log_what_it_answered_then(
    alice: Caller, mallory: Caller, pool: Pool
) -> None:
    await load_log(pool, _fixture(FIXTURE_LOG))

    await catch_up(pool)

    answers = await dump_wire({"org-a": alice, "org-b": mallory})
    old = _at_any_time(_fixture(FIXTURE_WIRE))
    assert _old_fields(_at_any_time(answers), old) == old


# What a field added since the fixtures were written holds for an old log: nothing recorded it.
_LEFT_BY_AN_OLD_LOG: Final[list[Any]] = [
    None,
    False,
    {"read": ["*"], "write": ["*"], "unlink": ["*"]},  # MCP model access: the default, all models
]


def _old_fields(found: Any, old: Any) -> Any:
    """`found` without the fields the fixture does not know, provided each holds what an old
    log leaves there (null, false, a default) — so every old field must still match exactly
    and a new field that an old log would fill in differently still fails."""
    if isinstance(found, dict) and isinstance(old, dict):
        return {
            key: _old_fields(value, old[key]) if key in old else value
            for key, value in found.items()
            if key in old or value not in _LEFT_BY_AN_OLD_LOG
        }
    if isinstance(found, list) and isinstance(old, list) and len(found) == len(old):
        return [_old_fields(a, b) for a, b in zip(found, old, strict=True)]
    return found


def _at_any_time(answers: str) -> Any:
    """The answers without the health score and its grade, which are read at the current
    time (their freshness factor ages: projections/health.py score_now)."""
    found = json.loads(answers)
    for org in found.values():
        for instance in org["instances"]:
            del instance["healthScore"], instance["healthScoreGrade"]
    return found


async def test_every_instance_stream_of_the_old_log_folds_to_its_phase_for_the_decider(
    pool: Pool, store: EventStore, registry: EventRegistry
) -> None:
    log = _fixture(FIXTURE_LOG)
    await load_log(pool, log)
    rows = [json.loads(line) for line in log.splitlines()]
    instances = [row["stream_id"] for row in rows if row["event_type"] == "InstanceCreated"]

    phases = {}
    for stream_id in instances:
        state: InstanceState = initial_state()
        for event in registry.decode_all(await store.read_stream(stream_id)):
            state = evolve(state, event)
        assert not isinstance(state, Absent)
        phases[state.facts.name] = state.status

    assert phases == {
        "Shop (live)": "running",
        "Ünïcode Café": "removing",
        "Brief": "removed",
        "Theirs 2": "creating",
    }
