"""The DNS check of a custom domain (on DomainVerificationRequested): does the domain resolve,
at the configured resolver, to the public addresses of its instance's server? The outcome is
a command to the domain's decider (recorded once per check); a pass also orders the first
certificate, a failure schedules the next check (the workers' leader sends it when due)."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime

from commands.domain import DomainLive, RecordVerificationFailed, RecordVerified, fold
from commands.domain_requests import domain_command
from commands.runner import load
from commands.server_state import ServerProfile
from events.domain import DomainVerificationRequested, domain_stream
from workers.acme.config import DomainConfig
from workers.acme.dns_check import NotPointing, check_points_at, lookup, resolver_for
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.instance_saga import load_instance
from workers.server.credentials import load_server, profile_of

# Certificate orders get ids derived from the check that passed: a redelivered check orders
# the same certificate, not a second one.
_ORDERS = uuid.UUID("0b6f3a52-55f6-4c6e-8f55-3c1d7e9a2b41")


async def server_addresses(config: DomainConfig, profile: ServerProfile) -> list[str]:
    """The server's public addresses: publicIpv4/publicIpv6 when the server has them (set at
    validation or by the operator), else its SSH host if that is an address, else what its
    host name resolves to."""
    known = [a for a in (profile.public_ipv4, profile.public_ipv6) if a]
    if known:
        return known
    try:
        return [str(ipaddress.ip_address(profile.host))]
    except ValueError:
        found, _ = await lookup(resolver_for(config.resolvers), profile.host)
        return found


class DomainVerificationSaga:
    def __init__(self, config: DomainConfig) -> None:
        self.config = config

    async def handle(self, deps: SagaDeps, trigger: Trigger) -> None:
        await check(self.config, deps, trigger)

    async def exhausted(self, deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
        await exhausted(deps, trigger, error)


async def check(config: DomainConfig, deps: SagaDeps, trigger: Trigger) -> None:
    event = trigger.event
    assert isinstance(event, DomainVerificationRequested)
    stream = domain_stream(event.domain_id)
    state = (await load(deps.store, stream, fold)).state
    if not isinstance(state, DomainLive):
        return  # removed meanwhile
    checking = state.facts.verification
    if checking is None or checking.request_id != event.request_id:
        return  # answered already, or superseded by a newer check
    instance = await load_instance(deps, event.instance_id)
    profile = profile_of(await load_server(deps.store, instance.facts.server_id))
    addresses = await server_addresses(config, profile)
    answer = await check_points_at(resolver_for(config.resolvers), state.facts.domain, addresses)
    command: RecordVerified | RecordVerificationFailed
    if isinstance(answer, NotPointing):
        command = RecordVerificationFailed(request_id=event.request_id, message=answer.message)
    else:
        order = str(uuid.uuid5(_ORDERS, event.request_id))
        command = RecordVerified(
            request_id=event.request_id, addresses=answer.addresses, certificate_request_id=order
        )
    await domain_command(
        deps.store,
        event.domain_id,
        command,
        datetime.now(UTC),
        trigger.metadata,
        idempotency_key=f"{event.request_id}/outcome",
    )


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    """A check that kept failing without an answer (the resolver, or our database): recorded
    as a failed check, so the backoff goes on."""
    event = trigger.event
    assert isinstance(event, DomainVerificationRequested)
    stream = domain_stream(event.domain_id)
    if not isinstance((await load(deps.store, stream, fold)).state, DomainLive):
        return
    command = RecordVerificationFailed(
        request_id=event.request_id, message=f"the check kept failing: {error}"
    )
    await domain_command(
        deps.store,
        event.domain_id,
        command,
        datetime.now(UTC),
        trigger.metadata,
        idempotency_key=f"{event.request_id}/outcome",
    )
