"""Telling a caller an instance's envVars values: allowed while the instance exists, and
recorded (issue 17: values are masked unless a manage caller asks for them, audited)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from commands.instance_state import Absent, InstanceState, Removed
from commands.refusals import InstanceNotFound
from events.instance import EnvVarsRevealed
from events.registry import DomainEvent


class RevealEnvVars(msgspec.Struct, frozen=True, kw_only=True):
    revealed_by: str


def reveal_env_vars(
    command: RevealEnvVars, state: InstanceState, now: datetime
) -> list[DomainEvent]:
    match state:
        case Absent() | Removed():
            raise InstanceNotFound
        case _:
            facts = state.facts
    return [
        EnvVarsRevealed(
            instance_id=facts.instance_id,
            names=sorted(facts.env_vars),
            revealed_by=command.revealed_by,
            revealed_at=now,
        )
    ]
