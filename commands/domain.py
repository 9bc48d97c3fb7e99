"""The decider of a custom domain's stream: added, its DNS verified (with retries for 24 h),
made primary, its certificate issued and renewed, removed. Pure: time and ids come in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, TypeAlias, assert_never

import msgspec

from commands.refusals import Refusal
from events.domain import (
    VERIFICATION_WINDOW_HOURS,
    CertificateFailed,
    CertificateIssued,
    CertificateRenewed,
    CertificateRequested,
    DomainAdded,
    DomainRemoved,
    DomainVerificationFailed,
    DomainVerificationRequested,
    DomainVerified,
    PrimaryDomainChanged,
)
from events.registry import DomainEvent
from events.secrets import Sealed

# Pauses between DNS checks that failed: quick at first (a record just created), then hourly.
DNS_BACKOFF: Final = (60, 300, 900, 1800, 3600)
# A CA's rate limit lasts hours (Let's Encrypt: per week); other failures are retried sooner.
RATE_LIMIT_PAUSE: Final = timedelta(hours=6)
FAILURE_PAUSE: Final = timedelta(hours=1)


class DomainNotFound(Refusal):
    def __init__(self) -> None:
        super().__init__("domain not found")


class AutoDomainKept(Refusal):
    """The auto subdomain lives as long as its instance; another domain can be primary."""

    def __init__(self) -> None:
        super().__init__(
            "the instance's auto subdomain cannot be removed; make another domain primary instead"
        )


class DomainFacts(msgspec.Struct, frozen=True, kw_only=True):
    domain_id: str
    instance_id: str
    domain: str
    auto_generated: bool = False
    verified: bool = False
    verification: DomainVerificationRequested | None = None  # the check in flight
    last_failure: DomainVerificationFailed | None = None  # of the last check, if it failed
    settled_requests: frozenset[str] = frozenset()  # request ids whose outcome is recorded
    certificate_expires_at: datetime | None = None
    certificate_request: str | None = None  # the order in flight


class DomainAbsent(msgspec.Struct, frozen=True):
    pass


class DomainLive(msgspec.Struct, frozen=True):
    facts: DomainFacts


class DomainGone(msgspec.Struct, frozen=True):
    facts: DomainFacts


DomainState: TypeAlias = DomainAbsent | DomainLive | DomainGone


class AddDomain(msgspec.Struct, frozen=True, kw_only=True):
    domain_id: str
    instance_id: str
    domain: str
    request_id: str
    auto_generated: bool = False


class VerifyDomain(msgspec.Struct, frozen=True, kw_only=True):
    """Check the DNS now: asked for (a new series of checks), or `retry` of the last failed
    check by the workers' backoff (the series goes on)."""

    request_id: str
    retry: bool = False


class RecordVerified(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    addresses: list[str]
    certificate_request_id: str


class RecordVerificationFailed(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    message: str


class MakePrimary(msgspec.Struct, frozen=True):
    pass


class RequestCertificate(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str


class RecordCertificate(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    certificate: Sealed
    private_key: Sealed
    expires_at: datetime


class RecordCertificateFailed(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    reason: str
    rate_limited: bool


class RemoveDomain(msgspec.Struct, frozen=True, kw_only=True):
    """`instance_removed`: the instance is gone, so its auto subdomain goes too."""

    instance_removed: bool = False


DomainCommand: TypeAlias = (
    AddDomain
    | VerifyDomain
    | RecordVerified
    | RecordVerificationFailed
    | MakePrimary
    | RequestCertificate
    | RecordCertificate
    | RecordCertificateFailed
    | RemoveDomain
)


def evolve(state: DomainState, event: DomainEvent) -> DomainState:
    if isinstance(state, DomainGone):
        return state
    if isinstance(event, DomainAdded):
        return DomainLive(
            DomainFacts(
                domain_id=event.domain_id,
                instance_id=event.instance_id,
                domain=event.domain,
                auto_generated=event.auto_generated,
            )
        )
    if isinstance(state, DomainAbsent):
        return state
    facts = state.facts
    replace = msgspec.structs.replace
    match event:
        case DomainVerificationRequested():
            return DomainLive(replace(facts, verification=event))
        case DomainVerified(request_id=request_id):
            settled = facts.settled_requests | {request_id}
            return DomainLive(
                replace(
                    facts,
                    verified=True,
                    verification=None,
                    last_failure=None,
                    settled_requests=settled,
                )
            )
        case DomainVerificationFailed(request_id=request_id):
            settled = facts.settled_requests | {request_id}
            return DomainLive(
                replace(
                    facts,
                    verified=False,
                    verification=None,
                    last_failure=event,
                    settled_requests=settled,
                )
            )
        case CertificateRequested(request_id=request_id):
            return DomainLive(replace(facts, certificate_request=request_id))
        case CertificateIssued(request_id=request_id, expires_at=expires_at):
            settled = facts.settled_requests | {request_id}
            return DomainLive(
                replace(
                    facts,
                    certificate_expires_at=expires_at,
                    certificate_request=None,
                    settled_requests=settled,
                )
            )
        case CertificateFailed(request_id=request_id):
            settled = facts.settled_requests | {request_id}
            return DomainLive(replace(facts, certificate_request=None, settled_requests=settled))
        case DomainRemoved():
            return DomainGone(facts)
        case _:
            return state


def fold(events: Iterable[DomainEvent]) -> DomainState:
    state: DomainState = DomainAbsent()
    for event in events:
        state = evolve(state, event)
    return state


def live(state: DomainState) -> DomainFacts:
    if isinstance(state, DomainLive):
        return state.facts
    raise DomainNotFound()


def decide(command: DomainCommand, state: DomainState, now: datetime) -> list[DomainEvent]:
    match command:
        case AddDomain():
            if not isinstance(state, DomainAbsent):
                return []  # the same add sent again (its ids are fresh per request)
            return [
                DomainAdded(
                    domain_id=command.domain_id,
                    instance_id=command.instance_id,
                    domain=command.domain,
                    added_at=now,
                    auto_generated=command.auto_generated,
                ),
                DomainVerificationRequested(
                    domain_id=command.domain_id,
                    instance_id=command.instance_id,
                    request_id=command.request_id,
                    first_requested_at=now,
                ),
            ]
        case VerifyDomain():
            return _verify(command, live(state), now)
        case RecordVerified() | RecordVerificationFailed():
            return _verification_outcome(command, live(state), now)
        case MakePrimary():
            facts = live(state)
            return [PrimaryDomainChanged(domain_id=facts.domain_id, instance_id=facts.instance_id)]
        case RequestCertificate():
            facts = live(state)
            if not facts.verified or facts.certificate_request is not None:
                return []  # not ours to order yet, or an order is running
            return [_certificate_requested(facts, command.request_id)]
        case RecordCertificate() | RecordCertificateFailed():
            return _certificate_outcome(command, state, now)
        case RemoveDomain(instance_removed=instance_removed):
            facts = live(state)
            if facts.auto_generated and not instance_removed:
                raise AutoDomainKept()
            ids = {"domain_id": facts.domain_id, "instance_id": facts.instance_id}
            return [DomainRemoved(**ids, domain=facts.domain, removed_at=now)]
        case _:
            assert_never(command)


def _verify(command: VerifyDomain, facts: DomainFacts, now: datetime) -> list[DomainEvent]:
    if facts.verification is not None:
        return []  # a check is running: its outcome answers this request too
    failed = facts.last_failure
    if not command.retry:
        return [
            DomainVerificationRequested(
                domain_id=facts.domain_id,
                instance_id=facts.instance_id,
                request_id=command.request_id,
                first_requested_at=now,
            )
        ]
    if failed is None or failed.retry_at is None:
        return []  # verified meanwhile, or the 24 h of retries are over
    return [
        DomainVerificationRequested(
            domain_id=facts.domain_id,
            instance_id=facts.instance_id,
            request_id=command.request_id,
            attempt=failed.attempt + 1,
            first_requested_at=failed.first_requested_at,
        )
    ]


def _verification_outcome(
    command: RecordVerified | RecordVerificationFailed, facts: DomainFacts, now: datetime
) -> list[DomainEvent]:
    checking = facts.verification
    if command.request_id in facts.settled_requests or checking is None:
        return []  # recorded already (a redelivered message)
    if checking.request_id != command.request_id:
        return []  # a newer check superseded this one
    ids = {
        "domain_id": facts.domain_id,
        "instance_id": facts.instance_id,
        "request_id": command.request_id,
    }
    if isinstance(command, RecordVerified):
        verified: list[DomainEvent] = [
            DomainVerified(**ids, addresses=command.addresses, verified_at=now)
        ]
        if facts.certificate_expires_at is None and facts.certificate_request is None:
            verified.append(_certificate_requested(facts, command.certificate_request_id))
        return verified
    return [
        DomainVerificationFailed(
            **ids,
            message=command.message,
            retry_at=next_check(checking, now),
            attempt=checking.attempt,
            first_requested_at=checking.first_requested_at,
        )
    ]


def next_check(checking: DomainVerificationRequested, now: datetime) -> datetime | None:
    """When the failed check `checking` is tried again; None once 24 h have passed since the
    first check of the series."""
    pause = timedelta(seconds=DNS_BACKOFF[min(checking.attempt, len(DNS_BACKOFF)) - 1])
    at = now + pause
    if at > checking.first_requested_at + timedelta(hours=VERIFICATION_WINDOW_HOURS):
        return None
    return at


def _certificate_requested(facts: DomainFacts, request_id: str) -> CertificateRequested:
    return CertificateRequested(
        domain_id=facts.domain_id,
        instance_id=facts.instance_id,
        request_id=request_id,
        renewal=facts.certificate_expires_at is not None,
    )


def _certificate_outcome(
    command: RecordCertificate | RecordCertificateFailed, state: DomainState, now: datetime
) -> list[DomainEvent]:
    if isinstance(state, DomainGone):
        return []  # removed while the order ran: the cleanup saga removes what was installed
    facts = live(state)
    if command.request_id in facts.settled_requests:
        return []
    ids = {
        "domain_id": facts.domain_id,
        "instance_id": facts.instance_id,
        "request_id": command.request_id,
    }
    if isinstance(command, RecordCertificate):
        kind = CertificateRenewed if facts.certificate_expires_at is not None else CertificateIssued
        return [
            kind(
                **ids,
                certificate=command.certificate,
                private_key=command.private_key,
                expires_at=command.expires_at,
                issued_at=now,
            )
        ]
    pause = RATE_LIMIT_PAUSE if command.rate_limited else FAILURE_PAUSE
    return [
        CertificateFailed(
            **ids,
            reason=command.reason,
            rate_limited=command.rate_limited,
            retry_at=now + pause,
            failed_at=now,
        )
    ]
