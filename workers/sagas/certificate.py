"""The certificate saga (on CertificateRequested): order a certificate from the ACME CA with
HTTP-01 (the challenge files written where the server's proxy serves them), install it with
the domain's HTTPS route (checked by nginx, then reloaded), then record it sealed by the
Vault. Every failure, the CA's included, is a CertificateFailed with the reason; a rate
limit is marked so the next attempt waits hours, not seconds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from commands.domain import DomainLive, RecordCertificate, RecordCertificateFailed, fold
from commands.domain_requests import domain_command
from commands.runner import load
from events.domain import CertificateRequested, domain_stream
from workers.acme.config import DomainConfig
from workers.acme.issuer import AcmeClient, AcmeFailed, Issued
from workers.acme.self_signed import SELF_SIGNED, SelfSignedIssuer
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.domain_server import (
    DomainPaths,
    install_certificate,
    publish_challenges,
    server_of,
)
from workers.server.layout import ProxyLayout
from workers.server.remote import StepError
from workers.ssh.errors import SshError

log = logging.getLogger(__name__)


class Issuer(Protocol):
    async def issue(
        self, domain: str, publish: Callable[[list[tuple[str, str]]], Awaitable[None]]
    ) -> Issued: ...


class CertificateSaga:
    """One ACME account per worker process, shared by its orders (or the sandbox's
    self-signed stand-in)."""

    def __init__(self, config: DomainConfig) -> None:
        self.config = config
        self.acme: Issuer = (
            SelfSignedIssuer()
            if config.acme.directory_url == SELF_SIGNED
            else AcmeClient(config.acme)
        )

    async def handle(self, deps: SagaDeps, trigger: Trigger) -> None:
        event = trigger.event
        assert isinstance(event, CertificateRequested)
        stream = domain_stream(event.domain_id)
        state = (await load(deps.store, stream, fold)).state
        if not isinstance(state, DomainLive):
            return  # removed meanwhile
        if state.facts.certificate_request != event.request_id:
            return  # recorded already (a redelivery), or not this order
        domain = state.facts.domain
        try:
            async with server_of(deps, event.instance_id) as (instance, remote):
                paths = DomainPaths(ProxyLayout(deps.config.root), domain, instance.facts.slug)

                async def publish(challenges: list[tuple[str, str]]) -> None:
                    await publish_challenges(remote, paths, challenges)

                issued = await self.acme.issue(domain, publish)
                await install_certificate(
                    deps,
                    self.config,
                    remote,
                    instance.facts,
                    paths,
                    issued.fullchain_pem,
                    issued.private_key_pem,
                )
        except AcmeFailed as e:
            await self._failed(deps, trigger, event, str(e), rate_limited=e.rate_limited)
            return
        except (StepError, SshError) as e:
            await self._failed(deps, trigger, event, f"installing it failed: {e}")
            return
        command = RecordCertificate(
            request_id=event.request_id,
            certificate=await deps.vault.seal(stream, issued.fullchain_pem),
            private_key=await deps.vault.seal(stream, issued.private_key_pem),
            expires_at=issued.expires_at,
        )
        await self._record(deps, trigger, event, command)

    async def exhausted(self, deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
        event = trigger.event
        assert isinstance(event, CertificateRequested)
        await self._failed(deps, trigger, event, f"the order kept failing: {error}")

    async def _failed(
        self,
        deps: SagaDeps,
        trigger: Trigger,
        event: CertificateRequested,
        reason: str,
        *,
        rate_limited: bool = False,
    ) -> None:
        log.warning("certificate for domain %s failed: %s", event.domain_id, reason)
        command = RecordCertificateFailed(
            request_id=event.request_id, reason=reason, rate_limited=rate_limited
        )
        await self._record(deps, trigger, event, command)

    async def _record(
        self,
        deps: SagaDeps,
        trigger: Trigger,
        event: CertificateRequested,
        command: RecordCertificate | RecordCertificateFailed,
    ) -> None:
        await domain_command(
            deps.store,
            event.domain_id,
            command,
            datetime.now(UTC),
            trigger.metadata,
            idempotency_key=f"{event.request_id}/outcome",
        )
