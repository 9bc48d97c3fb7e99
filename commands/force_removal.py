"""Forcing the end of a removal that keeps failing (DELETE ?force=true): the instance is
recorded removed and its slug and host ports are given back in ONE transaction, and its
secrets are crypto-shredded, as the teardown's last steps would have done."""

from __future__ import annotations

from datetime import datetime

from commands.instance import ForceRemoval, decide
from commands.instance_state import Absent, InstanceFacts, InstanceState, evolve, initial_state
from commands.refusals import ConcurrentModification, InstanceNotFound
from commands.reservation import PortsState, SlugState, fold_ports, fold_slug
from commands.runner import Outcome, folder, loaded_from
from events.errors import WrongExpectedVersion
from events.instance import instance_stream
from events.metadata import EventMetadata
from events.registry import DomainEvent, EventRegistry
from events.reservation import PortsReleased, SlugReleased, ports_stream, slug_stream
from events.secrets import Vault
from events.store import EventStore, NewEvents

_fold = folder(initial_state(), evolve)


async def force_remove_instance(
    store: EventStore,
    registry: EventRegistry,
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
    on any of the three streams is decided again on fresh state."""
    stream_id = instance_stream(instance_id)
    for _ in range(attempts):
        found = await store.read_streams({stream_id: 0})
        loaded = loaded_from(registry, found[stream_id], _fold, org_id=metadata.org_id)
        events = decide(ForceRemoval(), loaded.state, now)
        batch = await _releases(store, registry, _facts(loaded.state), metadata)
        await vault.forget(stream_id)
        batch.append(NewEvents(stream_id, loaded.expected, events, metadata))
        try:
            results = await store.append_batch(batch)
        except WrongExpectedVersion:
            continue
        return Outcome(results[-1].version, results[-1].position, events)
    raise ConcurrentModification(stream_id)


async def _releases(
    store: EventStore,
    registry: EventRegistry,
    facts: InstanceFacts,
    metadata: EventMetadata,
) -> list[NewEvents]:
    """The slug and host ports the instance still holds, given back (streams in the order a
    create locks them: slug, then ports)."""
    slug_id = slug_stream(metadata.org_id, facts.slug)
    ports_id = ports_stream(facts.server_id)
    found = await store.read_streams({slug_id: 0, ports_id: 0})
    slug = loaded_from(registry, found[slug_id], fold_slug)
    ports = loaded_from(registry, found[ports_id], fold_ports)
    batch = []
    if events := release_slug(slug.state, facts.slug, facts.instance_id):
        batch.append(NewEvents(slug_id, slug.expected, events, metadata))
    if events := release_ports(ports.state, facts.instance_id):
        batch.append(NewEvents(ports_id, ports.expected, events, metadata))
    return batch


def _facts(state: InstanceState) -> InstanceFacts:
    if isinstance(state, Absent):
        raise InstanceNotFound
    return state.facts


def release_slug(state: SlugState, slug: str, instance_id: str) -> list[DomainEvent]:
    """Nothing when the slug is no longer this instance's (released already)."""
    if state.holder != instance_id:
        return []
    return [SlugReleased(slug=slug, instance_id=instance_id)]


def release_ports(state: PortsState, instance_id: str) -> list[DomainEvent]:
    if instance_id not in state.held:
        return []
    return [PortsReleased(instance_id=instance_id)]
