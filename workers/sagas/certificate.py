"""The certificate saga (on CertificateRequested): order a certificate from the ACME CA with
HTTP-01 (the challenge files written where the server's proxy serves them), install it with
the domain's HTTPS route (checked by nginx, then reloaded), then record it sealed by the
Vault. Every failure, the CA's included, is a CertificateFailed with the reason; a rate
limit is marked so the next attempt waits hours, not seconds. For an instance's auto
subdomain the instance's own route must serve the challenges first (routes rendered before
it did are re-rendered), and its route adds HTTPS only: plain HTTP stays the instance's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
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
from workers.sagas.domain_operations import close, opened, run_step
from workers.sagas.domain_server import (
    DomainPaths,
    install_certificate,
    publish_challenges,
    serve_challenges_on_route,
    server_of,
)
from workers.server.layout import ProxyLayout
from workers.server.remote import StepError
from workers.ssh.errors import SshError

log = logging.getLogger(__name__)
CHALLENGES = "serve-challenges"  # the auto subdomain's: its instance's route serves them
ORDER = "order-certificate"
INSTALL = "install-certificate"


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
        auto = state.facts.auto_generated
        operation = await opened(deps, "issue-certificate", event.request_id, trigger.metadata)
        issued: list[Issued] = []
        try:
            async with server_of(deps, event.instance_id) as (instance, remote):
                await operation.start(
                    "issue-certificate", event.instance_id, instance.facts.server_id, deps.worker
                )
                proxy = ProxyLayout(deps.config.root)
                paths = DomainPaths(proxy, domain, instance.facts.slug)

                async def challenges() -> str:
                    return await serve_challenges_on_route(deps, remote, instance.facts, proxy)

                async def publish(challenges: list[tuple[str, str]]) -> None:
                    await publish_challenges(remote, paths, challenges)

                async def order() -> str:
                    issued.append(await self.acme.issue(domain, publish))
                    return f"issued for {domain}, valid until {issued[0].expires_at:%Y-%m-%d}"

                async def install() -> str:
                    if not issued:
                        # Ordered in an earlier delivery that ended before the outcome: the
                        # key is gone with it, so this order ends and the next attempt orders.
                        raise StepError("interrupted after the order; the next attempt orders anew")
                    await install_certificate(
                        deps,
                        self.config,
                        remote,
                        instance.facts,
                        paths,
                        issued[0].fullchain_pem,
                        issued[0].private_key_pem,
                        http_redirect=not auto,
                    )
                    return f"installed on the proxy: {paths.certificate}"

                if auto:
                    await run_step(operation, CHALLENGES, challenges)
                await run_step(operation, ORDER, order)
                await run_step(operation, INSTALL, install)
        except AcmeFailed as e:
            await self._failed(deps, trigger, event, str(e), rate_limited=e.rate_limited)
            await close(operation, ORDER, str(e))
            return
        except (StepError, SshError) as e:
            reason = f"installing it failed: {e}"
            await self._failed(deps, trigger, event, reason)
            await close(operation, _failed_step(operation.progress.completed, auto), reason)
            return
        certificate = issued[0]
        command = RecordCertificate(
            request_id=event.request_id,
            certificate=await deps.vault.seal(stream, certificate.fullchain_pem),
            private_key=await deps.vault.seal(stream, certificate.private_key_pem),
            expires_at=certificate.expires_at,
        )
        await self._record(deps, trigger, event, command)
        await close(operation, None, None)

    async def exhausted(self, deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
        event = trigger.event
        assert isinstance(event, CertificateRequested)
        reason = f"the order kept failing: {error}"
        await self._failed(deps, trigger, event, reason)
        operation = await opened(deps, "issue-certificate", event.request_id, trigger.metadata)
        await close(operation, None, reason)

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


def _failed_step(completed: Collection[str], auto: bool) -> str:
    if ORDER in completed:
        return INSTALL
    return ORDER if CHALLENGES in completed or not auto else CHALLENGES
