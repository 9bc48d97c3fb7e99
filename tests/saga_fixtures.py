"""The world of the saga tests: this test's database, JetStream stream and sshd, the relay
and the workers running against them, and builders that append what the API would."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest_asyncio
from background import Background, Running, relay
from builders import meta
from sshd_harness import SshdServer, free_port
from waiting import eventually

from commands.defaults import HostPorts
from events.instance import (
    ActionRequested,
    InstanceCreated,
    InstanceSettings,
    OdooVersion,
    ProvisioningRequested,
    RedeployRequested,
    RemovalRequested,
    instance_stream,
)
from events.metadata import EventMetadata
from events.operation import (
    OperationCancelled,
    OperationFailed,
    OperationSucceeded,
    operation_stream,
)
from events.pool import Pool
from events.registry import DomainEvent, EventRegistry
from events.reservation import PortsReserved, SlugReserved, ports_stream, slug_stream
from events.secrets import Vault
from events.server import ServerRegistered, ServerValidationRequested, server_stream
from events.store import ANY, NO_STREAM, EventStore, NewEvents
from odoofleet.sandbox.server import STANDIN_DIR
from odoofleet.settings import Settings
from workers.runtime.run import run_workers
from workers.sagas.deps import SagaConfig
from workers.sagas.readiness import Patience
from workers.ssh.runner import SshRunner

ORG = "org-a"
# The steps of a provisioning, in order.
PROVISIONING = [
    "server",
    "preflight",
    "layout",
    "db-up",
    "db-healthy",
    "create-db",
    "admin-password",
    "app-up",
    "readiness",
    "route",
]
QUICK = SagaConfig(
    readiness=Patience(timeout=3.0, interval=0.05, command_limit=10.0),
    stopping=Patience(timeout=3.0, interval=0.05, command_limit=10.0),
    server_wait=Patience(timeout=60.0, interval=0.05),
    lock_poll=0.02,
    connect_timeout=5.0,
    min_disk_free_bytes=1,
    removal_retries=(0.05,),
)
ACK_WAIT = 2.0
# How long a test waits for a saga's answer: a provisioning takes ~10 s on a busy 2-core
# machine; the margin is for a slow moment of CI, and a saga that hangs still fails the test.
SAGA_PATIENCE = 60.0
ENDS = (OperationSucceeded, OperationFailed, OperationCancelled)
DEVELOPMENT = InstanceSettings(
    workers=1,
    max_cron_threads=1,
    limit_memory_hard=1536 * 2**20,
    limit_memory_soft=2**30,
    limit_time_cpu=900,
    limit_time_real=1800,
    log_level="debug",
)


class Instance(msgspec.Struct, frozen=True):
    id: str
    operation_id: str
    slug: str
    server_id: str
    http_port_host: int
    metadata: EventMetadata
    admin_user_password: str = ""

    @property
    def stream(self) -> str:
        return instance_stream(self.id)


class Fleet:
    """Appends requests as the API would and watches the streams for the sagas' answers."""

    def __init__(
        self, settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
    ) -> None:
        self.settings, self.pool, self.registry, self.sshd = settings, pool, registry, sshd
        self.store = EventStore(pool)
        self.vault = Vault(pool, settings.secret_key)
        self.root = str(sshd.root)
        self._services = Background()

    # ---- background services ----------------------------------------------------------------

    def start_relay(self) -> None:
        self._background(relay(self.settings, self.pool))

    def start_workers(
        self,
        *,
        sagas: Collection[str] | None = None,
        runner: SshRunner | None = None,
        config: SagaConfig = QUICK,
        concurrency: int = 2,
        **options: Any,
    ) -> None:
        """`options`: more of run_workers' keyword arguments."""
        self._background(
            lambda stop: run_workers(
                self.settings.for_workers(),
                self.pool,
                stop,
                root=self.root,
                ack_wait=ACK_WAIT,
                concurrency=concurrency,
                retry_delay=0.2,
                config=config,
                sagas=sagas,
                runner=runner,
                shutdown_grace=0.0,
                **options,
            )
        )

    def _background(self, run: Running) -> None:
        self._services.start(run)

    async def stop(self) -> None:
        await self._services.stop()

    # ---- what the API appends -----------------------------------------------------------------

    async def register_server(
        self, *, pin: bool = True, port: int | None = None, max_sessions: int = 4
    ) -> str:
        server_id = str(uuid.uuid4())
        stream = server_stream(server_id)
        registered = ServerRegistered(
            server_id=server_id,
            name=f"test-{server_id[:8]}",
            host="127.0.0.1",
            port=port or self.sshd.port,
            ssh_user="root",
            auth_method="key",
            ssh_private_key=await self.vault.seal(stream, self.sshd.client_private_key),
            ssh_password=None,
            host_key=self.sshd.host_key_line if pin else None,
            max_ssh_sessions=max_sessions,
            created_at=datetime.now(UTC),
        )
        requested = ServerValidationRequested(server_id=server_id, operation_id=_new_id())
        await self.store.append(stream, NO_STREAM, [registered, requested], meta(ORG))
        return server_id

    async def request_validation(self, server_id: str) -> str:
        operation_id = _new_id()
        event = ServerValidationRequested(server_id=server_id, operation_id=operation_id)
        await self.store.append(server_stream(server_id), ANY, [event], meta(ORG))
        return operation_id

    async def create_instance(
        self,
        server_id: str,
        *,
        slug: str = "acme",
        env_vars: dict[str, str] | None = None,
        addons_path: str | None = None,
        branch: str | None = None,
        odoo_version: OdooVersion = "17.0",
    ) -> Instance:
        instance_id, operation_id, metadata = _new_id(), _new_id(), meta(ORG)
        stream = instance_stream(instance_id)
        http, longpolling = free_port(), free_port()
        admin_user_password = f"user-{uuid.uuid4().hex}"
        created = InstanceCreated(
            instance_id=instance_id,
            name=f"Instance {slug}",
            slug=slug,
            server_id=server_id,
            project_id=None,
            template_id=None,
            branch=branch,
            environment_type="development",
            odoo_version=odoo_version,
            odoo_edition="community",
            addons_path=addons_path,
            env_vars=await self.vault.seal_all(stream, env_vars or {}),
            auto_subdomain=f"{slug}.odoo.localhost",
            http_port=8069,
            longpolling_port=8072,
            http_port_host=http,
            longpolling_port_host=longpolling,
            settings=DEVELOPMENT,
            mcp_write_enabled=False,
            db_name=slug.replace("-", "_"),
            admin_password=await self.vault.seal(stream, f"admin-{uuid.uuid4().hex}"),
            db_password=await self.vault.seal(stream, f"pg-{uuid.uuid4().hex}"),
            admin_user_password=await self.vault.seal(stream, admin_user_password),
            created_at=datetime.now(UTC),
        )
        requested = ProvisioningRequested(
            instance_id=instance_id, server_id=server_id, operation_id=operation_id
        )
        ports = PortsReserved(
            instance_id=instance_id, http_port_host=http, longpolling_port_host=longpolling
        )
        await self.store.append_batch(
            [
                NewEvents(
                    slug_stream(ORG, slug),
                    ANY,
                    [SlugReserved(slug=slug, instance_id=instance_id)],
                    metadata,
                ),
                NewEvents(ports_stream(server_id), ANY, [ports], metadata),
                NewEvents(stream, NO_STREAM, [created, requested], metadata),
            ]
        )
        return Instance(
            instance_id, operation_id, slug, server_id, http, metadata, admin_user_password
        )

    async def request(self, instance: Instance, kind: type[DomainEvent], **fields: Any) -> str:
        """Append a `kind` request for a new operation; returns the operation's id."""
        operation_id = _new_id()
        event = kind(instance_id=instance.id, operation_id=operation_id, **fields)
        await self.store.append(instance.stream, ANY, [event], meta(ORG))
        return operation_id

    async def control(self, instance: Instance, action: str) -> str:
        return await self.request(instance, ActionRequested, action=action)

    async def remove(self, instance: Instance, cancels: str | None = None) -> str:
        return await self.request(instance, RemovalRequested, cancels_operation_id=cancels)

    async def redeploy(self, instance: Instance, color: str) -> str:
        return await self.request(instance, RedeployRequested, target_color=color)

    # ---- watching -------------------------------------------------------------------------------

    async def events(self, stream_id: str) -> list[DomainEvent]:
        recorded = await self.store.read_stream(stream_id)
        return [self.registry.decode(r.event_type, r.schema_version, r.data) for r in recorded]

    async def operation(self, operation_id: str) -> list[DomainEvent]:
        return await self.events(operation_stream(operation_id))

    async def wait_for(
        self, stream_id: str, *types: type[DomainEvent], timeout: float = SAGA_PATIENCE
    ) -> DomainEvent:
        """The first event of one of `types` on the stream, once it is there and the
        operation it names (if any) has ended: sagas record the outcome, then the end."""
        found: list[DomainEvent] = []

        async def there() -> bool:
            found[:] = [e for e in await self.events(stream_id) if isinstance(e, types)]
            return bool(found)

        names = ", ".join(t.__name__ for t in types)
        try:
            await eventually(
                there, timeout=timeout, interval=0.05, message=f"{names} on {stream_id}"
            )
        except AssertionError as missing:
            raise AssertionError(f"{missing}\n{await self.describe(stream_id)}") from None
        operation_id = getattr(found[0], "operation_id", None)
        if operation_id is not None:
            await self.wait_ended(operation_id, timeout)
        return found[0]

    async def describe(self, stream_id: str) -> str:
        """What the stream and the operations it names recorded, for a wait that timed out:
        where a saga stopped is the first thing its failure report needs."""
        events = await self.events(stream_id)
        lines = [f"{stream_id}: {[type(e).__name__ for e in events]}"]
        operations = dict.fromkeys(
            operation_id for e in events if (operation_id := getattr(e, "operation_id", None))
        )
        for operation_id in operations:
            recorded = await self.operation(operation_id)
            steps = [
                " ".join(
                    str(part)
                    for part in (type(e).__name__, getattr(e, "step", ""), getattr(e, "error", ""))
                    if part
                )
                for e in recorded
            ]
            lines.append(f"operation {operation_id}: {steps}")
        return "\n".join(lines)

    async def wait_ended(self, operation_id: str, timeout: float = SAGA_PATIENCE) -> None:
        async def ended() -> bool:
            return any(isinstance(e, ENDS) for e in await self.operation(operation_id))

        await eventually(ended, timeout=timeout, interval=0.05, message=f"{operation_id} ended")

    async def wait_step_started(
        self, operation_id: str, step: str, timeout: float = SAGA_PATIENCE
    ) -> None:
        async def started() -> bool:
            return any(getattr(e, "step", None) == step for e in await self.operation(operation_id))

        await eventually(started, timeout=timeout, interval=0.05, message=f"step {step} started")


def _new_id() -> str:
    return str(uuid.uuid4())


def read_text(path: str) -> str:
    return Path(path).read_text()


def exists(path: str) -> bool:
    return Path(path).exists()


def steps_of(events: list[DomainEvent], kind: type[DomainEvent]) -> list[str]:
    return [e.step for e in events if isinstance(e, kind)]


@pytest_asyncio.fixture(name="bare_fleet")
async def bare_fleet_fixture(
    settings: Settings, pool: Pool, registry: EventRegistry, sshd: SshdServer
) -> AsyncIterator[Fleet]:
    """The relay running in this process; a test starts the workers it wants."""
    fleet = Fleet(settings, pool, registry, sshd)
    fleet.start_relay()
    try:
        yield fleet
    finally:
        await fleet.stop()
        kill_hung_standins(sshd)


@pytest_asyncio.fixture(name="fleet")
async def fleet_fixture(bare_fleet: Fleet) -> Fleet:
    """The relay and every saga's workers running in this process."""
    bare_fleet.start_workers()
    return bare_fleet


# ---- hung stand-in calls ----------------------------------------------------------------------


STANDIN = str(STANDIN_DIR / "docker").encode()


def kill_hung_standins(sshd: SshdServer) -> None:
    """End stand-in docker calls of this sshd still sleeping on a `hang` switch, as if the
    command they stand for had finished."""
    marker = f"ODOOFLEET_STANDIN_STATE={sshd.state_dir}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            if STANDIN in cmdline and marker in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def free_host_ports() -> HostPorts:
    """Two consecutive host ports free on this machine (the HTTP and longpolling ports of one
    instance): the stand-in serves the app on the first, and other tests run meanwhile."""
    while True:
        first = 21000 + secrets.randbelow(8000)
        if all(_bindable(port) for port in (first, first + 1)):
            return HostPorts(first, first + 1)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
