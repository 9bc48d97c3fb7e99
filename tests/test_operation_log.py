"""An operation's stream is the saga's memory: resumed runs skip completed steps, rivals lose."""

from __future__ import annotations

import pytest
from builders import meta

from events.store import EventStore
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed


def _log(store: EventStore, op: str = "op-1") -> OperationLog:
    return OperationLog(store, op, meta())


async def test_a_resumed_operation_does_not_run_completed_steps_again(store: EventStore) -> None:
    ran: list[str] = []

    async def work(name: str) -> str:
        ran.append(name)
        return f"{name} ok"

    first = _log(store)
    await first.load()
    await first.start("provision", "i-1", "s-1", "w1")
    await first.step("preflight", lambda: work("preflight"))
    await first.step("layout", lambda: work("layout"))

    resumed = _log(store)
    await resumed.load()
    await resumed.start("provision", "i-1", "s-1", "w2")
    outputs = [
        await resumed.step(name, lambda n=name: work(n)) for name in ("preflight", "layout", "db")
    ]
    await resumed.succeed()

    assert ran == ["preflight", "layout", "db"]
    assert outputs == ["preflight ok", "layout ok", "db ok"]
    assert (await resumed.load()).finished


async def test_two_workers_cannot_both_start_one_step(store: EventStore) -> None:
    a, b = _log(store), _log(store)
    await a.load()
    await b.load()
    await a.start("provision", "i-1", "s-1", "a")

    with pytest.raises(OperationTakenOver):
        await b.start("provision", "i-1", "s-1", "b")


async def test_a_failed_step_is_recorded_with_its_error(store: EventStore) -> None:
    log = _log(store)
    await log.load()
    await log.start("provision", "i-1", "s-1", "w")

    async def broken() -> str:
        raise StepFailed("db-up", "container exited with code 1")

    with pytest.raises(StepFailed):
        await log.step("db-up", broken)
    await log.fail("db-up", "container exited with code 1")

    progress = await log.load()
    assert progress.failed_step == "db-up"
    assert progress.finished


async def test_a_cancelled_operation_stops_at_its_next_step(store: EventStore) -> None:
    runner = _log(store)
    await runner.load()
    await runner.start("provision", "i-1", "s-1", "w")

    await _log(store).cancel("removal requested")

    async def work() -> str:
        return "ran"

    with pytest.raises(OperationTakenOver):
        await runner.step("layout", work)
    assert (await runner.load()).cancelled
