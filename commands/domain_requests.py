"""The domain requests of the API and the workers, each one command through the runner: add
(the name reserved across the installation and the domain added in one transaction), verify,
make primary, order a certificate, record outcomes, remove (the name given back with it)."""

from __future__ import annotations

from datetime import datetime

from commands.domain import (
    AddDomain,
    AutoDomainKept,
    DomainAbsent,
    DomainCommand,
    DomainNotFound,
    RemoveDomain,
    decide,
    fold,
    live,
)
from commands.domain_auto import auto_domain_id, record_auto_domain
from commands.domain_name import (
    DomainTaken,
    ReleaseDomainName,
    ReserveDomainName,
    decide_release,
    decide_reserve,
    fold_domain_name,
)
from commands.instance_state import Abandoned, Absent, Removed, Removing
from commands.instance_state import fold as fold_instance
from commands.refusals import ActionNotAllowed, ConcurrentModification, InstanceNotFound
from commands.runner import Outcome, execute_command, load, loaded_from
from events.domain import domain_name_stream, domain_stream
from events.errors import WrongExpectedVersion
from events.instance import instance_stream
from events.metadata import EventMetadata
from events.store import NO_STREAM, EventStore, NewEvents


async def add_domain(
    store: EventStore, command: AddDomain, now: datetime, metadata: EventMetadata
) -> Outcome:
    """The instance must be the caller's and not being removed; a name held by any domain
    (of any organization) is DomainTaken, and two adds racing for one name: one wins."""
    instance = await load(
        store,
        instance_stream(command.instance_id),
        fold_instance,
        org_id=metadata.org_id,
    )
    match instance.state:
        case Absent() | Removed():
            raise InstanceNotFound
        case Removing() | Abandoned():
            raise ActionNotAllowed("add a domain to", instance.state.status)
    name_id = domain_name_stream(command.domain)
    held = loaded_from(await store.load_stream(name_id), fold_domain_name)
    reserve = ReserveDomainName(domain=command.domain, domain_id=command.domain_id)
    reserved = decide_reserve(reserve, held.state)
    added = decide(command, fold(()), now)
    batch = [
        NewEvents(name_id, held.expected, reserved, metadata),
        NewEvents(domain_stream(command.domain_id), NO_STREAM, added, metadata),
    ]
    try:
        results = await store.append_batch(batch)
    except WrongExpectedVersion as e:
        raise DomainTaken() from e  # another add reserved the name meanwhile
    last = results[-1]
    return Outcome(last.version, last.position, added)


async def domain_command(
    store: EventStore,
    domain_id: str,
    command: DomainCommand,
    now: datetime,
    metadata: EventMetadata,
    *,
    instance_id: str | None = None,
    idempotency_key: str | None = None,
) -> Outcome:
    """One command to the domain's decider. With `instance_id` (the API's path), a domain of
    another instance is not found either (an API key limited to one instance sees only its);
    the instance's auto subdomain not recorded yet is recorded first."""
    if instance_id is not None:
        try:
            await domain_of(store, domain_id, instance_id, metadata.org_id)
        except DomainNotFound:
            if not await _is_auto_domain(store, domain_id, instance_id, metadata.org_id):
                raise
            await record_auto_domain(store, instance_id, now, metadata)
    return await execute_command(
        store,
        domain_stream(domain_id),
        fold,
        decide,
        command,
        now,
        metadata,
        idempotency_key=idempotency_key,
    )


async def domain_of(store: EventStore, domain_id: str, instance_id: str, org_id: str) -> None:
    loaded = await load(store, domain_stream(domain_id), fold, org_id=org_id)
    if live(loaded.state).instance_id != instance_id:
        raise DomainNotFound()


async def _is_auto_domain(store: EventStore, domain_id: str, instance_id: str, org_id: str) -> bool:
    instance = await load(store, instance_stream(instance_id), fold_instance, org_id=org_id)
    state = instance.state
    if isinstance(state, Absent | Removed):
        return False
    return domain_id == auto_domain_id(instance_id, state.facts.auto_subdomain)


async def remove_domain(
    store: EventStore,
    domain_id: str,
    instance_id: str,
    now: datetime,
    metadata: EventMetadata,
    *,
    instance_removed: bool = False,
) -> Outcome:
    """DomainRemoved and the name given back, in one transaction; a second remove is 404
    (the domain is gone from every read). The auto subdomain is refused (AutoDomainKept),
    recorded or not, until `instance_removed`."""
    stream_id = domain_stream(domain_id)
    for _ in range(3):
        loaded = await load(store, stream_id, fold, org_id=metadata.org_id)
        if isinstance(loaded.state, DomainAbsent) and await _is_auto_domain(
            store, domain_id, instance_id, metadata.org_id
        ):
            raise AutoDomainKept()
        facts = live(loaded.state)
        if facts.instance_id != instance_id:
            raise DomainNotFound()
        command = RemoveDomain(instance_removed=instance_removed)
        removed = decide(command, loaded.state, now)
        name_id = domain_name_stream(facts.domain)
        held = loaded_from(await store.load_stream(name_id), fold_domain_name)
        release = ReleaseDomainName(domain=facts.domain, domain_id=domain_id)
        released = decide_release(release, held.state)
        batch = [NewEvents(stream_id, loaded.expected, removed, metadata)]
        if released:
            batch.append(NewEvents(name_id, held.expected, released, metadata))
        try:
            results = await store.append_batch(batch)
        except WrongExpectedVersion:
            continue
        return Outcome(results[0].version, max(r.position for r in results), removed)
    raise ConcurrentModification(stream_id)
