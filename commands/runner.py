"""The one command runner: load a stream, fold it, decide, append with the expected version."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, TypeVar

from commands.refusals import ConcurrentModification, Refusal, VersionMismatch
from commands.stream_states import Remembered, StreamStates
from events.errors import WrongExpectedVersion
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.store import (
    NO_STREAM,
    EventStore,
    ExpectedVersion,
    NewEvents,
    RecordedEvent,
    Stream,
    recorded,
)

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
    recorded: Sequence[RecordedEvent] = ()
    """`events` as stored (positions, ids, time), from the append's answer: nothing read back."""
    read: Sequence[RecordedEvent] | None = None
    """The stream as `execute` read it before deciding; None when it decided on a state it
    remembered (StreamStates) or did not come from `execute`."""


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
    states: StreamStates[S] | None = None,
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

    `states` (whose evolve must be `fold`'s step): the command is first decided on the
    state this process remembers of the stream, without reading it; the append's expected
    version proves that state current. Anything but a successful append on it (a conflict,
    a refusal, nothing to do, a version that is not `if_match`) may come from a state moved
    on meanwhile, so the stream is read and the command decided again, as without `states`.
    """
    owner = None if shared else metadata.org_id
    remembered = None if states is None or owner is None else states.get(stream_id, owner)
    tries = attempts if retry_on_conflict else 1
    while tries:
        guess, remembered = remembered, None
        read: list[RecordedEvent] | None = None
        if guess is not None:
            loaded = Loaded(guess.state, guess.version)
        else:
            tries -= 1
            read = await store.read_stream(stream_id)
            loaded = loaded_from(store.as_stream(stream_id, 0, read), fold, org_id=owner)
        try:
            if if_match is not None and loaded.version != if_match:
                raise VersionMismatch(if_match, loaded.version)
            events = await decision(loaded.state)
        except Refusal:
            if guess is not None:
                continue
            raise
        if not events:
            if guess is not None:
                continue
            return Outcome(loaded.version, None, events, read=read)
        ids = None if idempotency_key is None else event_ids(idempotency_key, len(events))
        item = NewEvents(stream_id, loaded.expected, events, metadata, ids)
        try:
            result = await store.append(stream_id, loaded.expected, events, metadata, ids)
        except WrongExpectedVersion as e:
            if states is not None:
                states.forget(stream_id)
            if guess is None and if_match is not None:
                raise VersionMismatch(if_match, e.actual or 0) from e
            continue
        if states is not None and owner is not None:
            before = Remembered(loaded.state, loaded.version, owner)
            states.advanced(stream_id, before, events, result.version)
        return Outcome(result.version, result.position, events, recorded(item, result), read)
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
    states: StreamStates[S] | None = None,
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
        states=states,
    )


def event_ids(key: str, count: int) -> list[uuid.UUID]:
    """Ids derived from `key` (e.g. "<operation id>/outcome"): an append repeated by a
    redelivered message carries the same ids, and the store answers it with the first one's
    result (EventStore.append)."""
    return [uuid.uuid5(_IDS, f"{key}#{n}") for n in range(count)]
