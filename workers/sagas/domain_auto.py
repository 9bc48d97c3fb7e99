"""The auto subdomain recorded as a domain once its instance is provisioned (on
InstanceProvisioned): its DNS check and certificate then follow as for a custom domain.
Recorded after provisioning, not at creation, so a certificate is never ordered for an
instance without a route; the domain leader records the ones this misses (instances created
before auto subdomains were domains included)."""

from __future__ import annotations

from datetime import UTC, datetime

from commands.domain_auto import record_auto_domain
from events.instance import InstanceProvisioned
from workers.sagas.deps import SagaDeps, Trigger


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    event = trigger.event
    assert isinstance(event, InstanceProvisioned)
    await record_auto_domain(deps.store, event.instance_id, datetime.now(UTC), trigger.metadata)


async def exhausted(_deps: SagaDeps, _trigger: Trigger, _error: BaseException) -> None:
    """Nothing to record: the domain leader's next round records it."""
