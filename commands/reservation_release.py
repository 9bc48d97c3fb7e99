"""Releasing a removed instance's reservations through the command runner: its host ports, its
slug and its host name, each decided on its own stream (commands.reservation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TypeVar

from commands.reservation import (
    ReleaseReservations,
    SlugState,
    decide_ports_release,
    decide_slug_release,
    decide_subdomain_release,
    fold_ports,
    fold_slug,
    fold_subdomain,
    slug_history,
)
from commands.runner import Fold, execute
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.reservation import legacy_slug_stream, ports_stream, slug_stream, subdomain_stream
from events.store import EventStore

S = TypeVar("S")
Decide = Callable[[S], Sequence[DomainEvent]]


async def release_reservations(
    store: EventStore,
    command: ReleaseReservations,
    metadata: EventMetadata,
) -> str:
    """What was given back, in words for the operation's step output. A reservation the
    instance no longer holds is skipped, so a redelivered release appends nothing.

    A slug reserved under its legacy stream id is released on its new stream (nothing is
    appended to a legacy stream any more, so reading it once is enough)."""
    org_id = metadata.org_id
    legacy = (await store.load_stream(legacy_slug_stream(org_id, command.slug))).events
    ports = await _run(
        store,
        metadata,
        ports_stream(command.server_id),
        fold_ports,
        partial(decide_ports_release, command),
    )
    slug = await _run(
        store,
        metadata,
        slug_stream(org_id, command.slug),
        partial(_slug_state, command.slug, legacy),
        partial(decide_slug_release, command),
    )
    host = await _run(
        store,
        metadata,
        subdomain_stream(command.subdomain),
        fold_subdomain,
        partial(decide_subdomain_release, command),
        shared=True,
    )
    done = (
        ("host ports", ports),
        (f"slug {command.slug}", slug),
        (f"subdomain {command.subdomain}", host),
    )
    released = [what for what, appended in done if appended]
    return f"released: {', '.join(released)}" if released else "nothing was reserved any more"


def _slug_state(slug: str, legacy: list[DomainEvent], current: Iterable[DomainEvent]) -> SlugState:
    return fold_slug(slug_history(slug, legacy, current))


async def _run(
    store: EventStore,
    metadata: EventMetadata,
    stream_id: str,
    fold: Fold[S],
    decide: Decide[S],
    *,
    shared: bool = False,
) -> bool:
    """`shared`: a host name's stream, which every organization writes to."""

    async def decision(state: S) -> Sequence[DomainEvent]:
        return decide(state)

    outcome = await execute(
        store,
        stream_id,
        fold,
        decision,
        metadata,
        retry_on_conflict=True,
        shared=shared,
    )
    return bool(outcome.events)
