"""Creating an instance: reserve its slug, its host name and its host ports and write its
first events, all in ONE transaction, so two concurrent creates never share a slug, a host
name or a port."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import msgspec

from commands import instance, server, server_state
from commands.defaults import HostPorts, auto_subdomain, db_name_for
from commands.instance_state import initial_state
from commands.locks import StreamLocks
from commands.refusals import ConcurrentModification, SlugTaken
from commands.reservation import (
    PortsState,
    ReservePorts,
    ReserveSlug,
    ReserveSubdomain,
    SlugState,
    decide_ports,
    decide_slug,
    decide_subdomain,
    fold_ports,
    fold_slug,
    fold_subdomain,
    slug_history,
    subdomain_labels,
)
from commands.runner import Loaded, Outcome, folder, loaded_from
from commands.snapshots import Snapshots
from events.errors import WrongExpectedVersion
from events.instance import InstanceChoices, instance_stream
from events.legacy_reservations import LegacyLabels
from events.metadata import EventMetadata
from events.registry import DomainEvent
from events.reservation import (
    PortsReserved,
    legacy_slug_stream,
    ports_stream,
    slug_stream,
    subdomain_stream,
)
from events.secrets import Sealed, Vault
from events.server import server_stream
from events.store import NO_STREAM, EventStore, NewEvents, RecordedEvent, Stream, recorded

_server_fold = folder(server_state.initial_state(), server_state.evolve)


class InstanceDraft(InstanceChoices[str], frozen=True, kw_only=True):
    """A create request resolved at the edge (ids, defaults, generated passwords), before its
    secrets are sealed and its slug, host name and host ports reserved."""

    operation_id: str
    base_domain: str


@dataclass(frozen=True, slots=True)
class Created(Outcome):
    """A create's outcome, and the new instance stream's events as stored: the whole stream,
    so its fold is the instance, with no read back."""

    recorded: Sequence[RecordedEvent]


async def create_instance(
    store: EventStore,
    vault: Vault,
    draft: InstanceDraft,
    slugs: Sequence[str],
    *,
    host_ports: HostPorts,
    now: datetime,
    metadata: EventMetadata,
    locks: StreamLocks | None = None,
    ports: Snapshots[PortsState] | None = None,
    legacy_labels: LegacyLabels | None = None,
    attempts: int = 64,
) -> Created:
    """Create on the first free slug of `slugs` (one slug when the client chose it).

    Creates on one server from this process take turns on its ports stream (`locks`), and
    read only what was appended to it since this process last did (`ports`); a race lost to
    another process is retried: each round one of the racers wins, so `attempts` bounds how
    many concurrent creates on one server still succeed.
    """
    turn = (locks or StreamLocks())(ports_stream(draft.server_id))
    snapshots = ports if ports is not None else Snapshots[PortsState]()
    labels = {
        label
        for slug in slugs
        for label in subdomain_labels(slug, metadata.org_id, draft.instance_id)
    }
    legacy = await (legacy_labels or LegacyLabels()).held(store, labels)
    for index, slug in enumerate(slugs):
        try:
            async with turn:
                return await _create_with_slug(
                    store,
                    vault,
                    draft,
                    slug,
                    host_ports,
                    now,
                    metadata,
                    snapshots,
                    attempts,
                    legacy,
                )
        except SlugTaken:
            if index == len(slugs) - 1:
                raise
    raise ValueError("create_instance needs at least one slug")


async def _sealed(vault: Vault, draft: InstanceDraft) -> InstanceChoices[Sealed]:
    """Secrets are sealed under the instance stream, once the server check has passed."""
    stream_id = instance_stream(draft.instance_id)
    choices = {name: getattr(draft, name) for name in InstanceChoices.__struct_fields__}
    user = draft.admin_user_password
    return InstanceChoices[Sealed](
        **choices
        | {
            "env_vars": await vault.seal_all(stream_id, draft.env_vars),
            "admin_password": await vault.seal(stream_id, draft.admin_password),
            "db_password": await vault.seal(stream_id, draft.db_password),
            "admin_user_password": None if user is None else await vault.seal(stream_id, user),
        }
    )


async def _create_with_slug(
    store: EventStore,
    vault: Vault,
    draft: InstanceDraft,
    slug: str,
    host_ports: HostPorts,
    now: datetime,
    metadata: EventMetadata,
    snapshots: Snapshots[PortsState],
    attempts: int,
    legacy_labels: set[str],
) -> Created:
    """Each round reads the server and every reservation in one query, and seals the secrets
    once the server is known to take the instance (the data key is cached, so a second round
    seals without a round trip).

    The slug's legacy stream is read too: reservations made under it still hold, and are
    released on the new stream (commands.reservation.slug_history)."""
    server_id = server_stream(draft.server_id)
    slug_id = slug_stream(metadata.org_id, slug)
    legacy_id = legacy_slug_stream(metadata.org_id, slug)
    ports_id = ports_stream(draft.server_id)
    by_legacy = {
        auto_subdomain(label, draft.base_domain): label in legacy_labels
        for label in subdomain_labels(slug, metadata.org_id, draft.instance_id)
    }
    for _ in range(attempts):
        known = snapshots.get(ports_id)
        found = await store.load_streams(
            {
                server_id: 0,
                slug_id: 0,
                legacy_id: 0,
                ports_id: known.version if known is not None else 0,
                **{subdomain_stream(host): 0 for host in by_legacy},
            }
        )
        placed = loaded_from(found[server_id], _server_fold, org_id=metadata.org_id)
        before = found[legacy_id].events
        held = loaded_from(found[slug_id], partial(_slug_state, slug, before))
        hosts = {
            host: loaded_from(
                found[subdomain_stream(host)], partial(fold_subdomain, by_legacy=taken)
            )
            for host, taken in by_legacy.items()
        }
        ports = _ports_since(known, found[ports_id])
        snapshots.put(ports_id, ports)
        server.ensure_can_host(placed.state)
        sealed = await _sealed(vault, draft)
        slug_events = decide_slug(ReserveSlug(slug=slug, instance_id=draft.instance_id), held.state)
        host_events = decide_subdomain(
            ReserveSubdomain(candidates=list(hosts), instance_id=draft.instance_id),
            {host: loaded.state for host, loaded in hosts.items()},
        )
        host = host_events[0].subdomain
        reservation = ReservePorts(
            server_id=draft.server_id,
            instance_id=draft.instance_id,
            first=host_ports.first,
            last=host_ports.last,
        )
        port_events = decide_ports(reservation, ports.state)
        command = _command(draft, sealed, slug, host, port_events[0])
        instance_events = instance.decide(command, initial_state(), now)
        batch = [
            NewEvents(slug_id, held.expected, slug_events, metadata),
            NewEvents(subdomain_stream(host), hosts[host].expected, host_events, metadata),
            NewEvents(ports_id, ports.expected, port_events, metadata),
            NewEvents(instance_stream(draft.instance_id), NO_STREAM, instance_events, metadata),
        ]
        try:
            results = await store.append_batch(batch)
        except WrongExpectedVersion:
            continue  # the next round re-reads the reservations: a taken slug is a refusal
        return Created(
            results[-1].version,
            results[-1].position,
            instance_events,
            recorded(batch[-1], results[-1]),
        )
    raise ConcurrentModification(ports_id)


def _slug_state(slug: str, legacy: list[DomainEvent], current: Iterable[DomainEvent]) -> SlugState:
    return fold_slug(slug_history(slug, legacy, current))


def _ports_since(known: Loaded[PortsState] | None, since: Stream) -> Loaded[PortsState]:
    """The ports state from a snapshot and the events appended after it."""
    if known is None:
        return loaded_from(since, fold_ports)
    if not since.events:
        return known
    return Loaded(fold_ports(since.events, known.state), since.version)


def _command(
    draft: InstanceDraft,
    sealed: InstanceChoices[Sealed],
    slug: str,
    subdomain: str,
    ports: PortsReserved,
) -> instance.CreateInstance:
    return instance.CreateInstance(
        **msgspec.structs.asdict(sealed),
        operation_id=draft.operation_id,
        slug=slug,
        auto_subdomain=subdomain,
        db_name=db_name_for(slug),
        http_port_host=ports.http_port_host,
        longpolling_port_host=ports.longpolling_port_host,
    )
