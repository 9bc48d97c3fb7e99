"""An instance operation done through its running Odoo (rotate the admin password, issue MCP
credentials): started by one event, cancelled by a removal, and failed at its step, saying why,
while no Odoo runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from commands.instance_outcomes import REMOVING
from commands.instance_state import Abandoned, Existing, InstanceFacts, Removed, Removing
from events.instance import Color
from events.operation import OperationType
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import (
    Cancel,
    InstanceOperation,
    Plan,
    Reaction,
    record_exhausted,
    run_instance_operation,
)
from workers.sagas.operation_log import OperationLog
from workers.server.masking import Masker
from workers.server.remote import StepError


class _Request(Protocol):
    @property
    def operation_id(self) -> str: ...

    @property
    def instance_id(self) -> str: ...


E = TypeVar("E", bound=_Request)


@dataclass(frozen=True)
class RunningOdooSaga(Generic[E]):
    """`handle` and `exhausted` are what workers/runtime/run.py registers for `requested`."""

    kind: OperationType
    requested: type[E]
    plan: Callable[[E, InstanceFacts], Plan]

    def operation(self, trigger: Trigger) -> InstanceOperation:
        event = trigger.event
        assert isinstance(event, self.requested)
        return InstanceOperation(
            self.kind, event.operation_id, event.instance_id, lambda state: self.react(event, state)
        )

    def react(self, event: E, state: Existing) -> Reaction:
        if isinstance(state, Removing | Abandoned | Removed):
            return Cancel(REMOVING)
        return self.plan(event, state.facts)

    async def handle(self, deps: SagaDeps, trigger: Trigger) -> None:
        await run_instance_operation(deps, trigger, self.operation(trigger))

    async def exhausted(self, deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
        await record_exhausted(deps, trigger, self.operation(trigger), error)


def running_color(instance: InstanceFacts, *, nothing_to: str, then: str) -> Color:
    """The colour Odoo runs in. Checked when the step runs (not when the plan is made), so the
    operation's failure says why nothing was done: `no Odoo to <nothing_to>`, `start it, then
    <then>`."""
    if instance.active_color is None:
        raise StepError(f"the instance was never provisioned: no Odoo to {nothing_to}")
    if instance.stopped_on_purpose:
        raise StepError(f"the instance is stopped: start it, then {then}")
    return instance.active_color


def mask_from_now_on(log: OperationLog, secret: str) -> None:
    """The outputs and errors the operation records from now on hide `secret` too."""
    known, new = log.mask, Masker([secret])
    log.mask = lambda text: known(new(text))
