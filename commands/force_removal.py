"""Forcing the end of a removal that keeps failing (DELETE ?force=true): the instance is
recorded removed and its slug, host name and host ports are given back in ONE transaction,
and its secrets are crypto-shredded, as the teardown's last steps would have done."""

from __future__ import annotations

from datetime import datetime

from commands.instance import ForceRemoval, decide
from commands.instance_state import Absent, InstanceFacts, InstanceState, evolve, initial_state
from commands.refusals import ConcurrentModification, InstanceNotFound
from commands.reservation import (
    ReleaseReservations,
    decide_ports_release,
    decide_slug_release,
    decide_subdomain_release,
    fold_ports,
    fold_slug,
    fold_subdomain,
    slug_history,
)
from commands.runner import Outcome, folder, loaded_from
from events.errors import WrongExpectedVersion
from events.instance import instance_stream
from events.metadata import EventMetadata
from events.reservation import (
    legacy_slug_stream,
    ports_stream,
    slug_stream,
    subdomain_stream,
)
from events.secrets import Vault
from events.store import EventStore, NewEvents

_fold = folder(initial_state(), evolve)


async def force_remove_instance(
    store: EventStore,
    vault: Vault,
    instance_id: str,
    *,
    now: datetime,
    metadata: EventMetadata,
    attempts: int = 8,
) -> Outcome:
    """Refused (409) unless the instance's removal has failed. The secrets are shredded once
    the decider has allowed it and before the removal is recorded, as the teardown does (its
    forget-secrets step comes before InstanceRemoved): a crash in between leaves an instance
    whose removal can be forced again, never a removed one with readable secrets. A lost race
    on any of the streams it appends to is decided again on fresh state."""
    stream_id = instance_stream(instance_id)
    for _ in range(attempts):
        loaded = loaded_from(await store.load_stream(stream_id), _fold, org_id=metadata.org_id)
        events = decide(ForceRemoval(), loaded.state, now)
        batch = await _releases(store, _facts(loaded.state), metadata)
        await vault.forget(stream_id)
        batch.append(NewEvents(stream_id, loaded.expected, events, metadata))
        try:
            results = await store.append_batch(batch)
        except WrongExpectedVersion:
            continue
        return Outcome(results[-1].version, results[-1].position, events)
    raise ConcurrentModification(stream_id)


async def _releases(
    store: EventStore, facts: InstanceFacts, metadata: EventMetadata
) -> list[NewEvents]:
    """The slug, host name and host ports the instance still holds, given back (streams in
    the order a create locks them: slug, host name, ports). A slug reserved under its legacy
    stream id is released on its new stream, as the teardown does."""
    slug_id = slug_stream(metadata.org_id, facts.slug)
    legacy_id = legacy_slug_stream(metadata.org_id, facts.slug)
    host_id = subdomain_stream(facts.auto_subdomain)
    ports_id = ports_stream(facts.server_id)
    found = await store.load_streams({slug_id: 0, legacy_id: 0, host_id: 0, ports_id: 0})
    before = found[legacy_id].events
    slug = loaded_from(
        found[slug_id], lambda events: fold_slug(slug_history(facts.slug, before, events))
    )
    host = loaded_from(found[host_id], fold_subdomain)
    ports = loaded_from(found[ports_id], fold_ports)
    release = ReleaseReservations(
        instance_id=facts.instance_id,
        slug=facts.slug,
        subdomain=facts.auto_subdomain,
        server_id=facts.server_id,
    )
    batch = []
    if events := decide_slug_release(release, slug.state):
        batch.append(NewEvents(slug_id, slug.expected, events, metadata))
    if events := decide_subdomain_release(release, host.state):
        batch.append(NewEvents(host_id, host.expected, events, metadata))
    if events := decide_ports_release(release, ports.state):
        batch.append(NewEvents(ports_id, ports.expected, events, metadata))
    return batch


def _facts(state: InstanceState) -> InstanceFacts:
    if isinstance(state, Absent):
        raise InstanceNotFound
    return state.facts
