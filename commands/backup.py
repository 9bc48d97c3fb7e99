"""The backup stream: its phases, commands and decider (taking it, restoring from it,
deleting it). Outcomes of the backup, restore and deletion sagas are commands here too, each
recorded once (docs/saga-outcomes.md)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, TypeAlias, assert_never

import msgspec

from commands.refusals import Refusal
from commands.runner import folder
from events.backup import (
    BackupCompleted,
    BackupDeleted,
    BackupDeletionRequested,
    BackupExpired,
    BackupFailed,
    BackupPart,
    BackupReason,
    BackupRequested,
    InstanceRestored,
    RestoreFailed,
    RestoreRequested,
)
from events.registry import DomainEvent
from events.secrets import Sealed


class BackupNotFound(Refusal):
    def __init__(self) -> None:
        super().__init__("backup not found")


class BackupBusy(Refusal):
    """The backup is not in a phase that allows the request (409)."""

    def __init__(self, action: str, status: str) -> None:
        self.status = status
        super().__init__(f"cannot {action} a backup that is {status}")


class Absent(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "absent"


class Running(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "running"
    requested: BackupRequested


class Completed(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "completed"
    requested: BackupRequested
    parts: tuple[BackupPart, ...]
    restoring: RestoreRequested | None = None  # the restore running from it
    settled: frozenset[str] = frozenset()  # restore operations whose outcome is recorded


class Failed(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "failed"
    requested: BackupRequested
    step: str
    message: str


class Deleting(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "deleting"
    requested: BackupRequested
    parts: tuple[BackupPart, ...]
    operation_id: str
    expired: bool


class Deleted(msgspec.Struct, frozen=True):
    status: ClassVar[str] = "deleted"
    requested: BackupRequested


BackupState: TypeAlias = Absent | Running | Completed | Failed | Deleting | Deleted


class RequestBackup(msgspec.Struct, frozen=True, kw_only=True):
    backup_id: str
    instance_id: str
    operation_id: str
    destination_id: str
    reason: BackupReason
    data_key: Sealed
    due_at: datetime | None = None


class RecordBackupCompleted(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    parts: tuple[BackupPart, ...]


class RecordBackupFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    step: str
    message: str


class DeleteBackup(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    expired: bool = False


class RecordBackupDeleted(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


class RequestRestore(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    target_instance_id: str
    neutralize: bool = False
    new_instance: bool = False  # the target is created for the restore, after this command


class RecordRestored(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str


class RecordRestoreFailed(msgspec.Struct, frozen=True, kw_only=True):
    operation_id: str
    step: str
    message: str


BackupCommand: TypeAlias = (
    RequestBackup
    | RecordBackupCompleted
    | RecordBackupFailed
    | DeleteBackup
    | RecordBackupDeleted
    | RequestRestore
    | RecordRestored
    | RecordRestoreFailed
)


def evolve(state: BackupState, event: DomainEvent) -> BackupState:
    match state, event:
        case Absent(), BackupRequested():
            return Running(event)
        case Running(requested=requested), BackupCompleted(parts=parts):
            return Completed(requested, tuple(parts))
        case Running(requested=requested), BackupFailed(step=step, message=message):
            return Failed(requested, step, message)
        case Completed(), RestoreRequested():
            return msgspec.structs.replace(state, restoring=event)
        case Completed(), InstanceRestored() | RestoreFailed():
            settled = state.settled | {event.operation_id}
            return msgspec.structs.replace(state, restoring=None, settled=settled)
        case Completed(requested=requested, parts=parts), BackupDeletionRequested():
            return Deleting(requested, parts, event.operation_id, event.expired)
        case Failed(requested=requested), BackupDeletionRequested():
            return Deleting(requested, (), event.operation_id, event.expired)
        case Deleting(requested=requested), BackupDeleted() | BackupExpired():
            return Deleted(requested)
        case _:
            return state


def initial_state() -> BackupState:
    return Absent()


fold = folder(initial_state(), evolve)


def decide(command: BackupCommand, state: BackupState, now: datetime) -> list[DomainEvent]:
    match command:
        case RequestBackup():
            return _request(command, state, now)
        case RecordBackupCompleted() | RecordBackupFailed():
            return _taken(command, state, now)
        case DeleteBackup():
            return _delete(command, state)
        case RecordBackupDeleted():
            return _deleted(command, state)
        case RequestRestore():
            return _restore(command, state, now)
        case RecordRestored() | RecordRestoreFailed():
            return _restored(command, state, now)
        case _:
            assert_never(command)


def _request(command: RequestBackup, state: BackupState, now: datetime) -> list[DomainEvent]:
    if not isinstance(state, Absent):
        if state.requested.operation_id == command.operation_id:
            return []  # the same request again
        raise BackupBusy("request again", state.status)
    return [
        BackupRequested(
            backup_id=command.backup_id,
            instance_id=command.instance_id,
            operation_id=command.operation_id,
            destination_id=command.destination_id,
            reason=command.reason,
            data_key=command.data_key,
            requested_at=now,
            due_at=command.due_at,
        )
    ]


def _taken(
    command: RecordBackupCompleted | RecordBackupFailed, state: BackupState, now: datetime
) -> list[DomainEvent]:
    if isinstance(state, Absent):
        raise BackupNotFound
    if not isinstance(state, Running):
        return []  # recorded already (a redelivered outcome)
    requested = state.requested
    ids = {"backup_id": requested.backup_id, "instance_id": requested.instance_id}
    if isinstance(command, RecordBackupCompleted):
        return [
            BackupCompleted(
                **ids,
                operation_id=command.operation_id,
                parts=list(command.parts),
                completed_at=now,
            )
        ]
    return [
        BackupFailed(
            **ids, operation_id=command.operation_id, step=command.step, message=command.message
        )
    ]


def _delete(command: DeleteBackup, state: BackupState) -> list[DomainEvent]:
    match state:
        case Absent() | Deleted():
            raise BackupNotFound
        case Deleting():
            return []  # already on its way
        case Running():
            raise BackupBusy("delete", state.status)
        case Completed(restoring=RestoreRequested()):
            raise BackupBusy("delete", "being restored")
        case Completed() | Failed():
            return [
                BackupDeletionRequested(
                    backup_id=state.requested.backup_id,
                    instance_id=state.requested.instance_id,
                    operation_id=command.operation_id,
                    expired=command.expired,
                )
            ]
        case _:
            assert_never(state)


def _deleted(command: RecordBackupDeleted, state: BackupState) -> list[DomainEvent]:
    if not isinstance(state, Deleting) or state.operation_id != command.operation_id:
        return []
    ids = {
        "backup_id": state.requested.backup_id,
        "instance_id": state.requested.instance_id,
        "operation_id": command.operation_id,
    }
    return [BackupExpired(**ids) if state.expired else BackupDeleted(**ids)]


def _restore(command: RequestRestore, state: BackupState, now: datetime) -> list[DomainEvent]:
    match state:
        case Absent() | Deleted():
            raise BackupNotFound
        case Completed(restoring=None):
            return [
                RestoreRequested(
                    backup_id=state.requested.backup_id,
                    operation_id=command.operation_id,
                    source_instance_id=state.requested.instance_id,
                    target_instance_id=command.target_instance_id,
                    neutralize=command.neutralize,
                    new_instance=command.new_instance,
                    requested_at=now,
                )
            ]
        case Completed():
            if state.restoring is not None and state.restoring.operation_id == command.operation_id:
                return []
            raise BackupBusy("restore", "being restored")
        case _:
            raise BackupBusy("restore", state.status)


def _restored(
    command: RecordRestored | RecordRestoreFailed, state: BackupState, now: datetime
) -> list[DomainEvent]:
    if not isinstance(state, Completed) or command.operation_id in state.settled:
        return []
    restoring = state.restoring
    if restoring is None or restoring.operation_id != command.operation_id:
        return []
    ids = {"backup_id": state.requested.backup_id, "operation_id": command.operation_id}
    target = restoring.target_instance_id
    if isinstance(command, RecordRestored):
        return [InstanceRestored(**ids, target_instance_id=target, restored_at=now)]
    return [
        RestoreFailed(**ids, target_instance_id=target, step=command.step, message=command.message)
    ]
