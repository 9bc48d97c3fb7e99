"""The DNS check of a custom domain (on DomainVerificationRequested): does the domain resolve,
at the configured resolver, to the public addresses of its instance's server? The outcome is
a command to the domain's decider (recorded once per check); a pass also orders the first
certificate, a failure schedules the next check (the workers' leader sends it when due)."""

from __future__ import annotations

import contextlib
import ipaddress
import uuid
from datetime import UTC, datetime

from commands.domain import DomainLive, RecordVerificationFailed, RecordVerified, fold
from commands.domain_requests import domain_command
from commands.runner import load
from commands.server_state import ServerProfile
from events.domain import DomainVerificationRequested, domain_stream
from workers.acme.config import DomainConfig
from workers.acme.dns_check import (
    DnsAnswer,
    NotPointing,
    check_points_at,
    lookup,
    resolver_for,
)
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.domain_operations import close, opened, run_step
from workers.sagas.instance_saga import load_instance
from workers.server.credentials import load_server, profile_of

# Certificate orders get ids derived from the check that passed: a redelivered check orders
# the same certificate, not a second one.
_ORDERS = uuid.UUID("0b6f3a52-55f6-4c6e-8f55-3c1d7e9a2b41")
CHECK = "check-dns"


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


class _NotPointing(Exception):
    """The check's answer as a failed step (the resolver's answer is its message)."""


async def check(config: DomainConfig, deps: SagaDeps, trigger: Trigger) -> None:
    event = trigger.event
    assert isinstance(event, DomainVerificationRequested)
    log = await opened(deps, "verify-domain", event.request_id, trigger.metadata)
    stream = domain_stream(event.domain_id)
    state = (await load(deps.store, stream, fold)).state
    if not isinstance(state, DomainLive):
        await close(log, CHECK, "the domain was removed meanwhile")
        return
    checking = state.facts.verification
    if checking is None or checking.request_id != event.request_id:
        # Answered already (a redelivery after the outcome), or superseded by a newer check.
        failed = state.facts.last_failure
        mine = failed is not None and failed.request_id == event.request_id
        await close(log, CHECK, failed.message if mine and failed else None)
        return
    instance = await load_instance(deps, event.instance_id)
    await log.start("verify-domain", event.instance_id, instance.facts.server_id, deps.worker)
    profile = profile_of(await load_server(deps.store, instance.facts.server_id))
    addresses = await server_addresses(config, profile)
    domain = state.facts.domain
    answers: list[DnsAnswer] = []

    async def ask() -> str:
        answer = await check_points_at(resolver_for(config.resolvers), domain, addresses)
        answers.append(answer)
        if isinstance(answer, NotPointing):
            raise _NotPointing(answer.message)
        return f"{domain} resolves to {', '.join(answer.addresses)}: the server's address"

    with contextlib.suppress(_NotPointing):
        await run_step(log, CHECK, ask)
    # A step completed in an earlier delivery (its outcome not recorded): asked again.
    answer = (
        answers[0]
        if answers
        else await check_points_at(resolver_for(config.resolvers), domain, addresses)
    )
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
    await close(log, CHECK, answer.message if isinstance(answer, NotPointing) else None)


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    """A check that kept failing without an answer (the resolver, or our database): recorded
    as a failed check, so the backoff goes on."""
    event = trigger.event
    assert isinstance(event, DomainVerificationRequested)
    log = await opened(deps, "verify-domain", event.request_id, trigger.metadata)
    stream = domain_stream(event.domain_id)
    if not isinstance((await load(deps.store, stream, fold)).state, DomainLive):
        await close(log, CHECK, "the domain was removed meanwhile")
        return
    message = f"the check kept failing: {error}"
    command = RecordVerificationFailed(request_id=event.request_id, message=message)
    await domain_command(
        deps.store,
        event.domain_id,
        command,
        datetime.now(UTC),
        trigger.metadata,
        idempotency_key=f"{event.request_id}/outcome",
    )
    await close(log, CHECK, message)
