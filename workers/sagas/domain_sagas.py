"""The domain sagas the workers serve, bound to their configuration: (trigger event type,
stream type, handle, exhausted), as workers/runtime/run.py's Saga takes them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from workers.acme.config import DomainConfig
from workers.sagas import domain_auto, domain_removal
from workers.sagas.certificate import CertificateSaga
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.domain_verification import DomainVerificationSaga

Handler = Callable[[SagaDeps, Trigger], Awaitable[None]]
Exhausted = Callable[[SagaDeps, Trigger, BaseException], Awaitable[None]]


def domain_sagas(config: DomainConfig) -> list[tuple[str, str, Handler, Exhausted]]:
    certificates = CertificateSaga(config)
    checks = DomainVerificationSaga(config)
    sagas: list[tuple[str, str, Handler, Exhausted]] = [
        ("DomainVerificationRequested", "domain", checks.handle, checks.exhausted),
        ("CertificateRequested", "domain", certificates.handle, certificates.exhausted),
        ("DomainRemoved", "domain", domain_removal.handle, domain_removal.exhausted),
    ]
    if config.auto_domains:
        sagas.append(("InstanceProvisioned", "instance", domain_auto.handle, domain_auto.exhausted))
    return sagas
