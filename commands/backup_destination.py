"""The backup destination stream: created (after its probe succeeded), deleted."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, TypeAlias, assert_never

import msgspec

from commands.refusals import Refusal
from commands.runner import folder
from events.backup import (
    BackupDestinationCreated,
    BackupDestinationDeleted,
    DestinationKind,
)
from events.registry import DomainEvent
from events.secrets import Sealed


class DestinationNotFound(Refusal):
    def __init__(self) -> None:
        super().__init__("backup destination not found")


class Absent(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "absent"


class Active(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "active"
    created: BackupDestinationCreated


class Deleted(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "deleted"


DestinationState: TypeAlias = Absent | Active | Deleted


class CreateDestination(msgspec.Struct, frozen=True, kw_only=True):
    destination_id: str
    name: str
    kind: DestinationKind
    settings: dict[str, str]
    credentials: Sealed | None


class DeleteDestination(msgspec.Struct, frozen=True):
    pass


def evolve(state: DestinationState, event: DomainEvent) -> DestinationState:
    match event:
        case BackupDestinationCreated():
            return Active(event)
        case BackupDestinationDeleted():
            return Deleted()
        case _:
            return state


def initial_state() -> DestinationState:
    return Absent()


fold = folder(initial_state(), evolve)


def decide(
    command: CreateDestination | DeleteDestination, state: DestinationState, now: datetime
) -> list[DomainEvent]:
    match command, state:
        case CreateDestination(), Absent():
            return [
                BackupDestinationCreated(
                    destination_id=command.destination_id,
                    name=command.name,
                    kind=command.kind,
                    settings=command.settings,
                    credentials=command.credentials,
                    created_at=now,
                )
            ]
        case CreateDestination(), _:
            return []
        case DeleteDestination(), Active():
            return [BackupDestinationDeleted(destination_id=state.created.destination_id)]
        case DeleteDestination(), _:
            raise DestinationNotFound
        case _:
            assert_never(command)
