"""A saga's own fold, given / when / then over its operation's events: which steps a resumed
run skips, how often each was tried, and whether the operation ended. No database."""

from __future__ import annotations

from events.operation import (
    OperationCancelled,
    OperationFailed,
    OperationStarted,
    OperationStepCompleted,
    OperationStepFailed,
    OperationStepStarted,
    OperationSucceeded,
)
from events.registry import DomainEvent
from workers.sagas.operation_log import OperationProgress, evolve, fold_progress

OP = "op-1"
STARTED = OperationStarted(
    operation_id=OP, type="provision", instance_id="i-1", server_id="s-1", worker="w"
)


def tried(step: str, attempt: int = 1) -> OperationStepStarted:
    return OperationStepStarted(operation_id=OP, step=step, attempt=attempt)


def done(step: str, output: str = "ok") -> OperationStepCompleted:
    return OperationStepCompleted(operation_id=OP, step=step, duration_ms=1, output=output)


def broke(step: str) -> OperationStepFailed:
    return OperationStepFailed(operation_id=OP, step=step, duration_ms=1, error="e", output="")


def test_nothing_recorded_is_an_operation_not_started() -> None:
    then = fold_progress([])

    assert then == OperationProgress()
    assert then.started is None
    assert not then.finished


def test_completed_steps_are_kept_with_their_output_for_a_resumed_run() -> None:
    then = fold_progress([STARTED, tried("layout"), done("layout", "laid out"), tried("db-up")])

    assert then.started == STARTED
    assert then.completed == {"layout": "laid out"}
    assert then.version == 4
    assert not then.finished


def test_each_try_of_a_step_is_counted() -> None:
    given: list[DomainEvent] = [STARTED, tried("verify"), broke("verify"), tried("verify", 2)]

    then = fold_progress(given)

    assert then.attempts == {"verify": 2}
    assert then.failed_step == "verify"


def test_success_and_failure_finish_the_operation() -> None:
    assert fold_progress([STARTED, OperationSucceeded(operation_id=OP)]).finished
    failed = OperationFailed(operation_id=OP, step="db-up", error="boom")
    assert fold_progress([STARTED, failed]).finished


def test_a_cancellation_finishes_the_operation_as_cancelled() -> None:
    then = fold_progress([STARTED, OperationCancelled(operation_id=OP, reason="removed")])

    assert then.finished
    assert then.cancelled


def test_evolve_leaves_the_progress_it_was_given_as_it_was() -> None:
    before = fold_progress([STARTED])

    after = evolve(before, done("layout"))

    assert before.completed == {}
    assert after.completed == {"layout": "ok"}
