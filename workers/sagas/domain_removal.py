"""The cleanup of a removed domain (on DomainRemoved): its route taken out of the server's
proxy (nginx checked, then reloaded), its certificate and key deleted. The domain is gone
from the API already; this saga is retried by the consumer until the server agrees."""

from __future__ import annotations

import logging

from events.domain import DomainRemoved
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.domain_server import DomainPaths, remove_domain_files, server_of
from workers.server.layout import ProxyLayout

log = logging.getLogger(__name__)


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    event = trigger.event
    assert isinstance(event, DomainRemoved)
    async with server_of(deps, event.instance_id) as (instance, remote):
        paths = DomainPaths(ProxyLayout(deps.config.root), event.domain, instance.facts.slug)
        await remove_domain_files(remote, paths)


async def exhausted(_deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    """Nothing to record on a stream that ended; the log says what was left on the server."""
    event = trigger.event
    assert isinstance(event, DomainRemoved)
    log.error(
        "domain %s: its route and certificate could not be removed from the server: %s",
        event.domain,
        error,
    )
