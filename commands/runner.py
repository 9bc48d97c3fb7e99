"""The one command runner: load a stream, fold it, decide, append with the expected version."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, TypeVar

from commands.refusals import ConcurrentModification, VersionMismatch
from events.errors import WrongExpectedVersion
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.store import NO_STREAM, EventStore, ExpectedVersion, Stream

# The namespace of derived event ids; the one the sagas' appends used before they went
# through the runner, so an outcome appended then is recognised by its id.
_IDS: Final = uuid.UUID("3b8f0f5e-6c2d-4a7e-9a51-0d1c2e3f4a5b")

S = TypeVar("S")
C = TypeVar("C")
Fold = Callable[[Iterable[DomainEvent]], S]
Decision = Callable[[S], Awaitable[Sequence[DomainEvent]]]


@dataclass(frozen=True, slots=True)
class Loaded(Generic[S]):
    state: S
    version: int  # 0: no stream (or one of another organization)

    @property
    def expected(self) -> ExpectedVersion:
        return self.version if self.version else NO_STREAM


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: the stream's version after it, and the global position of its last
    event (None when the decider decided nothing needed to happen)."""

    version: int
    position: int | None
    events: Sequence[DomainEvent]


def folder(initial: S, evolve: Callable[[S, DomainEvent], S]) -> Fold[S]:
    """A fold from an initial state and an evolve function."""

    def fold(events: Iterable[DomainEvent]) -> S:
        state = initial
        for event in events:
            state = evolve(state, event)
        return state

    return fold


async def load(
    store: EventStore,
    stream_id: str,
    fold: Fold[S],
    *,
    org_id: str | None = None,
) -> Loaded[S]:
    """The stream's state and version. With `org_id`, a stream written for another
    organization loads as if it did not exist (tenancy: another org's resource is a 404)."""
    return loaded_from(await store.load_stream(stream_id), fold, org_id=org_id)


def loaded_from(stream: Stream, fold: Fold[S], *, org_id: str | None = None) -> Loaded[S]:
    """`load` of a stream read whole already (EventStore.load_streams reads several at once)."""
    if not stream.version or (org_id is not None and stream.org_id != org_id):
        return Loaded(fold(()), 0)
    return Loaded(fold(stream.events), stream.version)


async def execute(
    store: EventStore,
    stream_id: str,
    fold: Fold[S],
    decision: Decision[S],
    metadata: EventMetadata,
    *,
    if_match: int | None = None,
    retry_on_conflict: bool = False,
    attempts: int = 3,
    shared: bool = False,
    idempotency_key: str | None = None,
) -> Outcome:
    """Run one command against one stream.

    `decision` closes over the command and the clock and calls a pure decider. A concurrent
    append makes the expected version wrong: with `retry_on_conflict` the command is decided
    again on the fresh state (only for commands whose outcome is still right then); with
    `if_match` the client's version no longer holds, so the answer is VersionMismatch.
    `shared`: a stream every organization writes to (a host name reservation), loaded
    whoever wrote it first. `idempotency_key` derives the events' ids (`event_ids`), so the
    same command sent again by a redelivered message appends nothing the second time, even
    where its decider could not tell.
    """
    owner = None if shared else metadata.org_id
    for _ in range(attempts if retry_on_conflict else 1):
        loaded = await load(store, stream_id, fold, org_id=owner)
        if if_match is not None and loaded.version != if_match:
            raise VersionMismatch(if_match, loaded.version)
        events = await decision(loaded.state)
        if not events:
            return Outcome(loaded.version, None, events)
        ids = None if idempotency_key is None else event_ids(idempotency_key, len(events))
        try:
            result = await store.append(stream_id, loaded.expected, events, metadata, ids)
        except WrongExpectedVersion as e:
            if if_match is not None:
                raise VersionMismatch(if_match, e.actual or 0) from e
            continue
        return Outcome(result.version, result.position, events)
    raise ConcurrentModification(stream_id)


async def execute_command(
    store: EventStore,
    stream_id: str,
    fold: Fold[S],
    decide: Callable[[C, S, datetime], Sequence[DomainEvent]],
    command: C,
    now: datetime,
    metadata: EventMetadata,
    *,
    shared: bool = False,
    idempotency_key: str | None = None,
) -> Outcome:
    """`execute` with a pure decider, decided again on the fresh state after a lost race:
    whether a command is allowed depends only on the state it is decided on."""

    async def decision(state: S) -> Sequence[DomainEvent]:
        return decide(command, state, now)

    return await execute(
        store,
        stream_id,
        fold,
        decision,
        metadata,
        retry_on_conflict=True,
        shared=shared,
        idempotency_key=idempotency_key,
    )


def event_ids(key: str, count: int) -> list[uuid.UUID]:
    """Ids derived from `key` (e.g. "<operation id>/outcome"): an append repeated by a
    redelivered message carries the same ids, and the store answers it with the first one's
    result (EventStore.append)."""
    return [uuid.uuid5(_IDS, f"{key}#{n}") for n in range(count)]
