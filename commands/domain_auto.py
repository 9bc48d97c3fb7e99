"""The instance's auto subdomain (`<slug>.<base domain>`) as a domain of its own: recorded
once, with a derived id, on a `domain-<id>` stream like a custom domain, so the same DNS check
and certificate sagas serve it. Recorded after provisioning, by the domain leader's rounds for
instances that have none yet (instances created before it existed included: nothing in their
log is rewritten), or on demand when the API is asked to act on it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

from commands.domain import AddDomain, DomainAbsent, decide, fold
from commands.instance_state import Abandoned, Absent, Removed, Removing
from commands.instance_state import fold as fold_instance
from commands.runner import Outcome, load
from events.domain import domain_stream
from events.errors import WrongExpectedVersion
from events.instance import instance_stream
from events.metadata import EventMetadata
from events.store import NO_STREAM, EventStore

# The namespace the instances read model derived the auto subdomain's id from before it was a
# domain stream (projections/instances.py): the id an API client saw stays the same.
AUTO_DOMAIN_IDS: Final = uuid.UUID("6f7d1c52-8a43-4c1e-9d51-2f0a8e7b9c10")
_CHECKS: Final = uuid.UUID("2d4b8e61-7c3a-4f90-b1e5-9a6c0d3f7e28")


def auto_domain_id(instance_id: str, auto_subdomain: str) -> str:
    return str(uuid.uuid5(AUTO_DOMAIN_IDS, f"{instance_id}/{auto_subdomain}"))


async def record_auto_domain(
    store: EventStore, instance_id: str, now: datetime, metadata: EventMetadata
) -> Outcome:
    """The instance's auto subdomain added (and its first DNS check asked for) unless it is
    there already or the instance is gone or going; recorded once however many callers race
    (one id per instance, appended to a stream that must not exist)."""
    instance = await load(
        store, instance_stream(instance_id), fold_instance, org_id=metadata.org_id
    )
    state = instance.state
    if isinstance(state, Absent | Removed | Removing | Abandoned):
        return Outcome(instance.version, None, [])
    subdomain = state.facts.auto_subdomain
    domain_id = auto_domain_id(instance_id, subdomain)
    stream_id = domain_stream(domain_id)
    loaded = await load(store, stream_id, fold)
    if not isinstance(loaded.state, DomainAbsent):
        return Outcome(loaded.version, None, [])
    command = AddDomain(
        domain_id=domain_id,
        instance_id=instance_id,
        domain=subdomain,
        request_id=str(uuid.uuid5(_CHECKS, domain_id)),
        auto_generated=True,
    )
    added = decide(command, loaded.state, now)
    try:
        result = await store.append(stream_id, NO_STREAM, added, metadata)
    except WrongExpectedVersion:
        return Outcome(0, None, [])  # another caller recorded it meanwhile
    return Outcome(result.version, result.position, added)
