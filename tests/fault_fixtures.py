"""What the fault tests share: a NATS and a PostgreSQL of the test's own, to kill and start
again; the relay, the workers and the projections running in the test's event loop; creates
and control actions through the command layer, as the API sends them; and what JetStream and
the stand-in docker recorded, to count every event published and every change made."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pgserver
import pytest
import pytest_asyncio
from background import Background
from builders import meta
from infra import NatsProcess
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pgserver.postgres_server import PostgresServer, get_server
from saga_fixtures import (
    ORG,
    STANDIN,
    Fleet,
    Instance,
    free_host_ports,
    kill_hung_standins,
)
from sshd_harness import SSHD, SshdServer
from waiting import eventually

from commands.change_instance import control_instance
from commands.create_instance import InstanceDraft, create_instance
from commands.defaults import settings_for
from events.instance import ControlAction, InstanceCreated, ProvisioningRequested
from events.migrate import migrate
from events.publishing import decode_wire
from events.store import START, EventStore
from odoofleet.settings import Settings

# pgserver generates its command functions (pg_ctl, …) at import: mypy cannot see them.
PG_COMMANDS: Any = pgserver
# The provisioning steps that change the server, each once (counted by `changes`).
PROVISIONING_CHANGES = {"layout": 1, "db-up": 1, "create-db": 1, "admin-password": 1, "app-up": 1}


# ---- servers of the test's own ------------------------------------------------------------------


@pytest.fixture(name="private_nats")
def private_nats_fixture(tmp_path: Path) -> Iterator[NatsProcess]:
    """A nats-server with JetStream that the test may SIGKILL and start again on the same port
    and store directory."""
    server = NatsProcess(tmp_path / "nats-store")
    server.start()
    yield server
    server.kill()


class PrivatePostgres:
    """An embedded PostgreSQL the test may stop and start again (same data, same socket)."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return str(self.server.get_uri())

    async def stop(self) -> None:
        """A fast shutdown: every session is ended at once, as in a restart or a failover."""
        await asyncio.to_thread(
            PG_COMMANDS.pg_ctl,
            ["-w", "-m", "fast", "stop"],
            pgdata=self.server.pgdata,
            user=self.server.system_user,
        )

    async def start(self) -> None:
        await asyncio.to_thread(self.server.ensure_postgres_running)


@pytest_asyncio.fixture(name="private_postgres")
async def private_postgres_fixture() -> AsyncIterator[PrivatePostgres]:
    """A migrated database on an embedded PostgreSQL of this test's own."""
    data = Path(tempfile.mkdtemp(prefix="fault-pg-"))
    server = await asyncio.to_thread(get_server, data, cleanup_mode="delete")
    postgres = PrivatePostgres(server)
    await migrate(postgres.url)
    yield postgres
    await asyncio.to_thread(server.cleanup)


# ---- services running in the test's event loop -----------------------------------------------


@contextlib.asynccontextmanager
async def cleaned_up(fleet: Fleet, background: Background | None = None) -> AsyncIterator[None]:
    """Stop the fleet's and the test's services, and end stand-in calls still hanging."""
    try:
        yield
    finally:
        try:
            if background is not None:
                await background.stop()
            await fleet.stop()
        finally:
            kill_hung_standins(fleet.sshd)


# ---- the command layer, as the API drives it --------------------------------------------------


async def create(fleet: Fleet, server_id: str, slug: str) -> Instance:
    """Create an instance through the command layer: slug and ports reserved, secrets sealed,
    InstanceCreated and ProvisioningRequested appended in one transaction."""
    draft = InstanceDraft(
        instance_id=str(uuid.uuid4()),
        operation_id=str(uuid.uuid4()),
        name=f"Instance {slug}",
        server_id=server_id,
        project_id=None,
        template_id=None,
        branch=None,
        environment_type="development",
        odoo_version="17.0",
        odoo_edition="community",
        addons_path=None,
        env_vars={"SMTP_PASSWORD": secrets.token_hex(8)},
        http_port=8069,
        longpolling_port=8072,
        settings=settings_for("development"),
        mcp_write_enabled=False,
        admin_password=secrets.token_urlsafe(16),
        db_password=secrets.token_urlsafe(16),
        admin_user_password=secrets.token_urlsafe(16),
        base_domain="odoo.localhost",
    )
    metadata = meta(ORG)
    outcome = await create_instance(
        fleet.store,
        fleet.vault,
        draft,
        [slug],
        host_ports=free_host_ports(),
        now=datetime.now(UTC),
        metadata=metadata,
    )
    created = next(e for e in outcome.events if isinstance(e, InstanceCreated))
    requested = next(e for e in outcome.events if isinstance(e, ProvisioningRequested))
    return Instance(
        created.instance_id,
        requested.operation_id,
        created.slug,
        server_id,
        created.http_port_host,
        metadata,
    )


async def control(fleet: Fleet, instance: Instance, action: ControlAction) -> str:
    """Request a control action through the command layer; returns its operation's id."""
    operation_id = str(uuid.uuid4())
    await control_instance(
        fleet.store,
        instance.id,
        action,
        operation_id=operation_id,
        now=datetime.now(UTC),
        metadata=meta(ORG),
    )
    return operation_id


# ---- what the stand-in docker was asked to change ----------------------------------------------


def changes(sshd: SshdServer, slug: str) -> Counter[str]:
    """How many times each step that changes the server ran its command for `slug`:
    layout (the filestore volume), db-up, create-db, admin-password, app-up, app-restart,
    app-stop."""
    counted: Counter[str] = Counter()
    for argv in sshd.docker_argvs():
        step = _change_of(argv, slug)
        if step is not None:
            counted[step] += 1
    return counted


def _change_of(argv: list[str], slug: str) -> str | None:
    if argv[1:3] == ["volume", "create"] and argv[-1] == f"{slug}_filestore":
        return "layout"
    if argv[1] != "compose" or "-p" not in argv:
        return None
    project = argv[argv.index("-p") + 1]
    if project == f"{slug}-blue" and "shell" in argv:
        return "admin-password"  # `odoo shell` in a one-off container, like create-db's
    wanted = {
        (f"{slug}-db", "up"): "db-up",
        (f"{slug}-blue", "run"): "create-db",
        (f"{slug}-blue", "up"): "app-up",
        (f"{slug}-blue", "restart"): "app-restart",
        (f"{slug}-blue", "stop"): "app-stop",
    }
    return next((step for (p, word), step in wanted.items() if p == project and word in argv), None)


def calls_in_flight(sshd: SshdServer, slugs: list[str], step: str) -> list[str]:
    """The slugs among `slugs` whose `step` command has reached the stand-in."""
    return [slug for slug in slugs if changes(sshd, slug)[step]]


# ---- what JetStream holds ------------------------------------------------------------------------


Published = tuple[str, str, int]  # (message id = event id, stream id, version)


async def log_order(store: EventStore) -> list[Published]:
    """Every event of the log, in log order, as JetStream should hold it."""
    events: list[Published] = []
    checkpoint = START
    while batch := await store.read_all(checkpoint, limit=5000):
        events += [(str(e.event_id), e.stream_id, e.version) for e in batch]
        checkpoint = batch[-1].checkpoint
    return events


async def jetstream_messages(url: str, stream: str, subject_prefix: str) -> list[Published]:
    """Every message of the stream, in stream order."""
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        total = (await js.stream_info(stream)).state.messages
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
        sub = await js.pull_subscribe(f"{subject_prefix}.events.>", stream=stream, config=config)
        found: list[Published] = []
        while len(found) < total:
            for msg in await sub.fetch(min(500, total - len(found)), timeout=5):
                wire = decode_wire(msg.data)
                message_id = msg.headers["Nats-Msg-Id"] if msg.headers else ""
                found.append((message_id, wire.stream_id, wire.version))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def check_published_once_in_log_order(store: EventStore, settings: Settings) -> None:
    """JetStream holds the log as it was once the sagas settled, each event once, in log
    order. The health observer may append meanwhile, so what was published is compared with
    the log read afterwards: it must be a prefix of it."""
    settled = await log_order(store)

    async def published() -> list[Published]:
        return await jetstream_messages(
            settings.nats_url, settings.nats_stream, settings.subject_prefix
        )

    async def caught_up() -> bool:
        return len(await published()) >= len(settled)

    await eventually(caught_up, timeout=20, interval=0.2, message="the log in JetStream")
    in_jetstream = await published()
    assert in_jetstream == (await log_order(store))[: len(in_jetstream)]


async def consumers_settled(url: str, stream: str, durables: tuple[str, ...]) -> bool:
    """Every message of these saga consumers delivered and acknowledged: nothing in flight,
    nothing waiting. False while NATS or JetStream does not answer yet."""
    try:
        nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0)
    except (OSError, nats.errors.Error, TimeoutError):
        return False
    try:
        js = nc.jetstream(timeout=2)
        for durable in durables:
            info = await js.consumer_info(stream, durable)
            if info.num_pending or info.num_ack_pending:
                return False
        return True
    except (nats.errors.Error, TimeoutError):
        return False
    finally:
        await nc.close()


# ---- a server that stops answering ------------------------------------------------------------


def sshd_processes(sshd: SshdServer) -> list[int]:
    """The sshd listener of this server and every sshd process under it (one per connection,
    and their privilege-separated children), not the commands they run."""
    config = str(sshd.base / "sshd_config").encode()
    table = _process_table()
    found = {pid for pid, (_, cmdline) in table.items() if config in cmdline}
    frontier = list(found)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent]
        frontier += children
        # A connection's processes retitle themselves "sshd: root@notty" and the like.
        found |= {pid for pid in children if table[pid][1].startswith((b"sshd", SSHD.encode()))}
    return sorted(found)


def _process_table() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process now."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # /proc/<pid>/stat: "pid (comm) state ppid …"; comm may contain spaces.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                table[int(entry.name)] = (ppid, (entry / "cmdline").read_bytes())
    return table


def signal_all(pids: list[int], signal_number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)


def standin_calls_running(sshd: SshdServer) -> list[int]:
    """Stand-in docker calls of this sshd still running (hanging, or held)."""
    marker = f"ODOOFLEET_STANDIN_STATE={sshd.state_dir}".encode()
    return [
        pid
        for pid, (_, cmdline) in _process_table().items()
        if STANDIN in cmdline and marker in _environ(pid)
    ]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""
