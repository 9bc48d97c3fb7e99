"""The server validation saga (on ServerValidationRequested, and on a ServerRegistered that
asked for none): connect and pin the host key, check Docker and Compose and gather the
server's facts, and make sure the per-server proxy runs. Its operation has no instance."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final, Literal

from events.registry import DomainEvent
from events.server import (
    HostKeyPinned,
    HostKeyTrust,
    ServerRegistered,
    ServerValidated,
    ServerValidationFailed,
    ServerValidationRequested,
    server_stream,
)
from workers.instance_access import Settled
from workers.layout import ProxyLayout
from workers.masking import Masker
from workers.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.proxy_steps import ensure_proxy
from workers.remote import Remote, StepError
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.runtime import Step, cancel, close, guarded, last_started_step
from workers.server_access import (
    ServerRecord,
    ServerSecrets,
    connection_info,
    fold_server,
    open_server_secrets,
)
from workers.server_facts import (
    ServerFacts,
    parse_server_facts,
    preflight_problems,
    server_facts_command,
)
from workers.slots import OperationLocks
from workers.ssh_errors import ServerUnreachable
from workers.streams import append_once, read

_OPERATION_IDS: Final = uuid.UUID("9c4e2a71-5d3b-4f86-a0c9-7e1b2d3c4f5a")
# A server that never answered us yet gets this long to: a listener that never speaks SSH
# would otherwise hold an operation for the whole connect timeout (issue 13).
FIRST_CONTACT_TIMEOUT: Final = 5.0


class _Validation:
    """One validation run: the server as last read, and its steps."""

    def __init__(
        self,
        deps: SagaDeps,
        trigger: Trigger,
        log: OperationLog,
        locks: OperationLocks,
        server_id: str,
    ) -> None:
        self.deps, self.trigger, self.log, self.locks = deps, trigger, log, locks
        self.server_id = server_id
        self.server = ServerRecord()
        self.secrets = ServerSecrets(None, None)

    async def reload(self) -> ServerRecord:
        stream = await read(self.deps.store, self.deps.registry, server_stream(self.server_id))
        self.server = fold_server(stream.events)
        return self.server

    def remote(self) -> Remote:
        timeout = self.deps.config.connect_timeout
        if self.server.pinned is None:
            timeout = min(timeout, FIRST_CONTACT_TIMEOUT)
        try:
            info = connection_info(self.server, self.secrets, timeout)
        except ValueError as e:
            raise StepError(str(e)) from e
        return Remote(
            self.deps.runner, info, self.locks, slot_timeout=self.deps.config.lock_timeout
        )

    async def connect(self) -> str:
        """Trust on first use: with no key given at registration, the first key seen is
        pinned; a key given at registration is pinned once a connection proved it."""
        seen = await self.remote().connect()
        if self.server.pinned is None:
            trust: HostKeyTrust = "given" if self.server.require().host_key else "first-use"
            pin = HostKeyPinned(
                server_id=self.server_id,
                host_key=seen.line,
                fingerprint=seen.fingerprint,
                trust=trust,
            )
            await self._append([pin], "pin", lambda server: server.pinned is None)
            pinned = (await self.reload()).pinned
            if pinned is None or pinned.fingerprint != seen.fingerprint:
                shown = pinned.fingerprint if pinned else "nothing"
                raise StepError(f"host key {seen.fingerprint} was seen, but {shown} is pinned")
        return f"connected as {self.remote().server.address}; host key {seen.fingerprint}"

    async def facts(self) -> str:
        output = await self.remote().check(server_facts_command(self.deps.config.root))
        problems = preflight_problems(
            parse_server_facts(output), min_disk_free_bytes=0, min_ram_available_bytes=0
        )
        if problems:
            raise StepError("; ".join(problems))
        return output

    async def proxy(self) -> str:
        proxy = ProxyLayout(self.deps.config.root)
        return await ensure_proxy(self.remote(), proxy, self.deps.config.compose_limit)

    async def settle(self, events: list[DomainEvent], outcome: Settled) -> None:
        """The outcome on the server stream once, then the operation's end."""
        operation_id = self.log.operation_id
        recorded = await self._append(
            events,
            "outcome",
            lambda server: operation_id not in server.outcomes and server.status != "deleted",
        )
        with contextlib.suppress(OperationTakenOver):
            if recorded:
                await close(self.log, outcome)
            else:
                await self.log.cancel("the server was deleted")

    async def _append(
        self, events: list[DomainEvent], what: str, allowed: Callable[[ServerRecord], bool]
    ) -> bool:
        return await append_once(
            self.deps.store,
            self.deps.registry,
            server_stream(self.server_id),
            events,
            self.trigger.metadata,
            key=f"{self.log.operation_id}/{what}",
            allowed=lambda recorded: allowed(fold_server(recorded)),
        )


async def validate(deps: SagaDeps, trigger: Trigger, operation_id: str, server_id: str) -> None:
    log = OperationLog(deps.store, deps.registry, operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        await locks.hold(f"validation of server {server_id}", deps.config.lock_timeout)
        run = _Validation(deps, trigger, log, locks, server_id)
        server = await run.reload()
        run.secrets = await open_server_secrets(deps.vault, server)
        log.mask = Masker(run.secrets.values())
        if (await log.load()).finished:
            return
        settled = server.outcomes.get(operation_id)
        if settled is not None:
            await close(log, settled)
            return
        if server.status == "deleted":
            reason = "the server was deleted"
            await cancel(
                log,
                reason,
                kind="validate",
                instance_id=None,
                server_id=server_id,
                worker=deps.worker,
            )
            return
        await log.start("validate", None, server_id, deps.worker)

        async def step(name: str, run_step: Callable[[], Awaitable[str]]) -> str:
            return await log.step(name, guarded(Step(name, run_step), retry_unreachable=False))

        try:
            await step("connect", run.connect)
            facts = parse_server_facts(await step("facts", run.facts))
            await step("proxy", run.proxy)
        except StepFailed as e:
            message = log.mask(e.message)
            unreachable = isinstance(e.__cause__, ServerUnreachable)
            status: Literal["unreachable", "error"] = "unreachable" if unreachable else "error"
            failure = ServerValidationFailed(
                server_id=server_id, operation_id=operation_id, status=status, message=message
            )
            await run.settle([failure], Settled(True, e.step, message))
            return
        except OperationTakenOver:
            return
        await run.settle([_validated(server_id, operation_id, facts)], Settled())


def _validated(server_id: str, operation_id: str, facts: ServerFacts) -> ServerValidated:
    return ServerValidated(
        server_id=server_id,
        operation_id=operation_id,
        os_name=facts.os_name,
        os_version=facts.os_version,
        cpu_cores=facts.cpu_cores,
        ram_total_bytes=facts.ram_total_bytes,
        disk_free_bytes=facts.disk_free_bytes,
        docker_version=facts.docker_version or "",
        compose_version=facts.compose_version or "",
        validated_at=datetime.now(UTC),
    )


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    """On ServerValidationRequested, and on ServerRegistered."""
    operation_id = await _operation_of(deps, trigger)
    if operation_id is not None:
        await validate(deps, trigger, operation_id, _server_of(trigger))


async def _operation_of(deps: SagaDeps, trigger: Trigger) -> str | None:
    """The validation operation a trigger asks for. A registration that came with a
    validation request asks for none (that request's consumer validates); one that came
    without gets an operation id derived from its event id."""
    event = trigger.event
    if isinstance(event, ServerValidationRequested):
        return event.operation_id
    assert isinstance(event, ServerRegistered)
    stream = await read(deps.store, deps.registry, server_stream(event.server_id))
    if fold_server(stream.events).validation_requested:
        return None
    return str(uuid.uuid5(_OPERATION_IDS, trigger.event_id))


def _server_of(trigger: Trigger) -> str:
    event = trigger.event
    assert isinstance(event, ServerValidationRequested | ServerRegistered)
    return event.server_id


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    """Validation kept failing without a verdict (e.g. PostgreSQL was down): record one."""
    operation_id, server_id = await _operation_of(deps, trigger), _server_of(trigger)
    if operation_id is None:
        return
    log = OperationLog(deps.store, deps.registry, operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    with contextlib.suppress(OperationTakenOver):
        await log.start("validate", None, server_id, deps.worker)
    step, message = last_started_step(log), f"gave up after repeated failures: {error}"
    failure = ServerValidationFailed(
        server_id=server_id, operation_id=operation_id, status="error", message=message
    )
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        run = _Validation(deps, trigger, log, locks, server_id)
        await run.reload()
        await run.settle([failure], Settled(True, step, message))
