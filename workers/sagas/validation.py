"""The server validation saga (on ServerValidationRequested, and on a ServerRegistered that
asked for none): connect and pin the host key, check Docker and Compose and gather the
server's facts, and make sure the per-server proxy runs. Its operation has no instance.

What it concludes about the server (the key it pinned, validated or failed) is a command to
the server's decider (commands.server), which records each once."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final, TypeAlias

import msgspec

from commands.outcome import FailedAt, OperationOutcome, Succeeded
from commands.server import (
    PinHostKey,
    RecordServerValidated,
    RecordServerValidationFailed,
    ServerOutcome,
)
from commands.server_commands import record_server_outcome
from commands.server_state import Absent, Deleted, Pinned, ServerProfile, ServerState, Unpinned
from events.registry import DomainEvent
from events.server import ServerRegistered, ServerValidationRequested
from workers.acme.public_address import detect_public_addresses
from workers.runtime.slots import OperationLocks
from workers.sagas.deps import SagaDeps, Trigger
from workers.sagas.operation_log import OperationLog, OperationTakenOver, StepFailed
from workers.sagas.proxy_steps import ensure_proxy
from workers.sagas.runtime import Step, cancel, close, guarded, last_started_step
from workers.server.credentials import (
    NO_SECRETS,
    connection_info,
    load_server,
    open_server_secrets,
    profile_of,
)
from workers.server.facts import (
    ServerFacts,
    parse_server_facts,
    preflight_problems,
    server_facts_command,
)
from workers.server.layout import ProxyLayout
from workers.server.masking import Masker
from workers.server.remote import Remote, StepError
from workers.ssh.errors import ServerUnreachable

_OPERATION_IDS: Final = uuid.UUID("9c4e2a71-5d3b-4f86-a0c9-7e1b2d3c4f5a")
# A server that never answered us yet gets this long to: a listener that never speaks SSH
# would otherwise hold an operation for the whole connect timeout (issue 13).
FIRST_CONTACT_TIMEOUT: Final = 5.0
SERVER_DELETED: Final = "the server was deleted"
SERVER_UNKNOWN: Final = "the server is not registered"


class Validate(msgspec.Struct, frozen=True):
    """Run the validation's steps."""


class Close(msgspec.Struct, frozen=True):
    """The server's stream has this operation's outcome already: only the log is left."""

    outcome: OperationOutcome


class Cancel(msgspec.Struct, frozen=True):
    reason: str


Reaction: TypeAlias = Validate | Close | Cancel


def react(state: ServerState, operation_id: str) -> Reaction:
    """What a validation operation does with the server as its decider folds it."""
    match state:
        case Absent():
            return Cancel(SERVER_UNKNOWN)
        case Deleted():
            return Cancel(SERVER_DELETED)
        case _:
            settled = state.profile.validations.get(operation_id)
            return Validate() if settled is None else Close(settled)


def operation_for(event: DomainEvent, event_id: str, state: ServerState) -> str | None:
    """The validation operation a trigger asks for. A registration that came with a
    validation request asks for none (that request's consumer validates); one that came
    without (from before every registration requested one) gets an operation id derived
    from its event id."""
    if isinstance(event, ServerValidationRequested):
        return event.operation_id
    if isinstance(state, Absent) or not profile_of(state).validation_requested:
        return str(uuid.uuid5(_OPERATION_IDS, event_id))
    return None


def validated(
    operation_id: str, facts: ServerFacts, addresses: tuple[str | None, str | None] = (None, None)
) -> RecordServerValidated:
    return RecordServerValidated(
        operation_id=operation_id,
        os_name=facts.os_name,
        os_version=facts.os_version,
        cpu_cores=facts.cpu_cores,
        ram_total_bytes=facts.ram_total_bytes,
        disk_free_bytes=facts.disk_free_bytes,
        docker_version=facts.docker_version or "",
        compose_version=facts.compose_version or "",
        public_ipv4=addresses[0],
        public_ipv6=addresses[1],
    )


def failed(operation_id: str, failure: StepFailed, message: str) -> RecordServerValidationFailed:
    """`message` is the failure's, masked: a server that could not be reached is
    `unreachable`, any other failure puts it in `error`."""
    unreachable = isinstance(failure.__cause__, ServerUnreachable)
    return RecordServerValidationFailed(
        operation_id=operation_id,
        status="unreachable" if unreachable else "error",
        message=message,
    )


class _Validation:
    """One validation run: the server as last loaded, and its steps."""

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
        self.state: ServerState = Absent()
        self.secrets = NO_SECRETS

    @property
    def profile(self) -> ServerProfile:
        return profile_of(self.state)

    async def reload(self) -> ServerState:
        self.state = await load_server(self.deps.store, self.server_id)
        return self.state

    def remote(self) -> Remote:
        timeout = self.deps.config.connect_timeout
        if isinstance(self.profile.host_key, Unpinned):
            timeout = min(timeout, FIRST_CONTACT_TIMEOUT)
        try:
            info = connection_info(self.profile, self.secrets, timeout)
        except ValueError as e:
            raise StepError(str(e)) from e
        return Remote(
            self.deps.runner, info, self.locks, slot_timeout=self.deps.config.lock_timeout
        )

    async def connect(self) -> str:
        """Trust on first use: with no key given at registration, the first key seen is
        pinned; a key given at registration is pinned once a connection proved it."""
        seen = await self.remote().connect()
        if isinstance(self.profile.host_key, Unpinned):
            await self._record(PinHostKey(host_key=seen.line, fingerprint=seen.fingerprint))
            await self.reload()
            pinned = self.profile.host_key
            if not isinstance(pinned, Pinned) or pinned.fingerprint != seen.fingerprint:
                shown = pinned.fingerprint if isinstance(pinned, Pinned) else "nothing"
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

    async def settle(self, command: ServerOutcome, outcome: OperationOutcome) -> None:
        """The outcome on the server's stream once, then the operation's end: closed as
        `outcome` says when the stream holds this operation's outcome, cancelled when the
        server was deleted meanwhile (its decider records nothing then)."""
        await self._record(command)
        recorded = isinstance(react(await self.reload(), self.log.operation_id), Close)
        with contextlib.suppress(OperationTakenOver):
            if recorded:
                await close(self.log, outcome)
            else:
                await self.log.cancel(SERVER_DELETED)

    async def _record(self, command: ServerOutcome) -> None:
        await record_server_outcome(
            self.deps.store,
            self.server_id,
            command,
            now=datetime.now(UTC),
            metadata=self.trigger.metadata,
        )


async def validate(deps: SagaDeps, trigger: Trigger, operation_id: str, server_id: str) -> None:
    log = OperationLog(deps.store, operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        await locks.hold(f"validation of server {server_id}", deps.config.lock_timeout)
        run = _Validation(deps, trigger, log, locks, server_id)
        reaction = react(await run.reload(), operation_id)
        if (await log.load()).finished:
            return
        match reaction:
            case Close(outcome=outcome):
                await close(log, outcome)
            case Cancel(reason=reason):
                await cancel(
                    log,
                    reason,
                    kind="validate",
                    instance_id=None,
                    server_id=server_id,
                    worker=deps.worker,
                )
            case Validate():
                run.secrets = await open_server_secrets(deps.vault, run.profile)
                log.mask = Masker(run.secrets.values())
                await _run_steps(run, deps, log, operation_id)


async def _run_steps(
    run: _Validation, deps: SagaDeps, log: OperationLog, operation_id: str
) -> None:
    await log.start("validate", None, run.server_id, deps.worker)

    async def step(name: str, run_step: Callable[[], Awaitable[str]]) -> str:
        return await log.step(name, guarded(Step(name, run_step), retry_unreachable=False))

    try:
        await step("connect", run.connect)
        facts = parse_server_facts(await step("facts", run.facts))
        await step("proxy", run.proxy)
        # Best effort, not a step: finding no address fails nothing (issue 16).
        addresses = await detect_public_addresses(run.remote(), run.profile.host)
    except StepFailed as e:
        message = log.mask(e.message)
        await run.settle(failed(operation_id, e, message), FailedAt(e.step, message))
        return
    except OperationTakenOver:
        return
    await run.settle(validated(operation_id, facts, addresses), Succeeded())


async def handle(deps: SagaDeps, trigger: Trigger) -> None:
    """On ServerValidationRequested, and on ServerRegistered."""
    operation_id = await _operation_of(deps, trigger)
    if operation_id is not None:
        await validate(deps, trigger, operation_id, _server_of(trigger))


async def _operation_of(deps: SagaDeps, trigger: Trigger) -> str | None:
    state = await load_server(deps.store, _server_of(trigger))
    return operation_for(trigger.event, trigger.event_id, state)


def _server_of(trigger: Trigger) -> str:
    event = trigger.event
    assert isinstance(event, ServerValidationRequested | ServerRegistered)
    return event.server_id


async def exhausted(deps: SagaDeps, trigger: Trigger, error: BaseException) -> None:
    """Validation kept failing without a verdict (e.g. PostgreSQL was down): record one."""
    operation_id, server_id = await _operation_of(deps, trigger), _server_of(trigger)
    if operation_id is None:
        return
    log = OperationLog(deps.store, operation_id, trigger.metadata)
    if (await log.load()).finished:
        return
    with contextlib.suppress(OperationTakenOver):
        await log.start("validate", None, server_id, deps.worker)
    step, message = last_started_step(log), f"gave up after repeated failures: {error}"
    command = RecordServerValidationFailed(
        operation_id=operation_id, status="error", message=message
    )
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        run = _Validation(deps, trigger, log, locks, server_id)
        await run.settle(command, FailedAt(step, message))
