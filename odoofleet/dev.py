"""`odoofleet dev`: everything in one process on a laptop — embedded PostgreSQL and NATS when
no URLs are set, migrations, then the API, relay, projectors, saga workers and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import msgspec
import uvicorn

from api.app import create_app
from commands.defaults import DEFAULT_HOST_PORTS
from events.migrate import migrate
from events.pool import Pool, open_pool
from events.relay import Relay, RelayConfig
from odoofleet.embedded import EmbeddedNats, EmbeddedPostgres
from odoofleet.sandbox.register import LOCAL_DOCKER_NAME, SANDBOX_NAME, ensure_registered
from odoofleet.sandbox.server import SandboxServer
from odoofleet.settings import Settings
from projections.run import run_projections
from workers.runtime.run import run_workers
from workers.ssh.network_policy import LOOPBACK_NETWORKS
from workers.webhooks.run import run_webhooks

log = logging.getLogger(__name__)

# The organization that `odoofleet dev`'s token and sandbox server belong to.
DEV_ORG = "default"
STREAMS_CUT_AFTER = 1  # seconds


def _streams_cut_on_stop(record: logging.LogRecord) -> bool:
    """Drop uvicorn's error lines for the streams cut at Ctrl-C (its count of them, and each
    one's cancellation): that is the plan, not news."""
    if str(record.msg).startswith("Cancel %s running task(s)"):
        return False
    error = record.exc_info[1] if record.exc_info else None
    cut = isinstance(error, asyncio.CancelledError) and "graceful shutdown" in str(error)
    return not cut


class SandboxInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The server `odoofleet dev` registered for the dev organization."""

    server_id: str
    name: str
    address: str


class DevOptions:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        data_dir: Path,
        fresh: bool,
        sandbox_server: bool,
        local_docker: bool = False,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self.fresh = fresh
        # --local-docker is the sandbox server running this machine's docker.
        self.sandbox_server = sandbox_server or local_docker
        self.local_docker = local_docker
        # Access logs and INFO lines; without it dev keeps to warnings, under its banner.
        self.verbose = verbose


def kept_secret(path: Path) -> str:
    """A random secret generated once and kept in the data directory (mode 0600)."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


class DevServices:
    """Starts the embedded servers the environment does not provide, and stops them."""

    def __init__(self, options: DevOptions, settings: Settings, env_has: set[str]) -> None:
        self.options = options
        self.base = settings
        self.env_has = env_has
        self.postgres: EmbeddedPostgres | None = None
        self.nats: EmbeddedNats | None = None

    def start(self) -> Settings:
        data = self.options.data_dir
        if self.options.fresh and data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True, exist_ok=True)
        overrides: dict[str, object] = {"log_format": "text"}
        if not self.options.verbose and "ODOOFLEET_LOG_LEVEL" not in self.env_has:
            overrides["log_level"] = "WARNING"
        if "DATABASE_URL" not in self.env_has:
            self.postgres = EmbeddedPostgres(data / "postgres")
            overrides["database_url"] = self.postgres.start()
        if "NATS_URL" not in self.env_has:
            self.nats = EmbeddedNats(data / "nats")
            overrides["nats_url"] = self.nats.start()
        if not self.base.jwt_secret and not self.base.jwt_public_key:
            # A new signing secret at each start, never written down: the token printed by
            # the last run stops working, and none stays usable from the data directory.
            (data / "jwt-secret").unlink(missing_ok=True)
            overrides["jwt_secret"] = secrets.token_urlsafe(48)
        if not self.base.secret_key:
            overrides["secret_key"] = kept_secret(data / "secret-key")
        if "ODOOFLEET_SERVER_ALLOWED_NETWORKS" not in self.env_has:
            # The sandbox server listens on 127.0.0.1; servers of a laptop's own are there too.
            overrides["server_allowed_networks"] = LOOPBACK_NETWORKS
        if "ODOOFLEET_WEBHOOK_ALLOWED_NETWORKS" not in self.env_has:
            # A receiver under development listens on the laptop itself.
            overrides["webhook_allowed_networks"] = LOOPBACK_NETWORKS
        return _with(self.base, overrides)

    def stop(self) -> None:
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()


def _with(settings: Settings, overrides: dict[str, object]) -> Settings:
    raw = msgspec.structs.asdict(settings)
    raw.update(overrides)
    return msgspec.convert(raw, Settings)


async def run_dev(
    settings: Settings,
    options: DevOptions,
    stop: asyncio.Event,
    on_ready: Callable[[SandboxInfo | None], None],
) -> None:
    """Run every part until `stop`; then stop them all and wait for each."""
    await migrate(settings.database_url)
    pool = await open_pool(settings.database_url, min_size=2, max_size=20)
    sandbox = (
        SandboxServer(options.data_dir, local_docker=options.local_docker)
        if options.sandbox_server
        else None
    )
    try:
        host_ports = DEFAULT_HOST_PORTS
        info = None
        if sandbox is not None:
            await sandbox.start()
            server_id = await ensure_registered(settings, pool, sandbox, DEV_ORG)
            host_ports = sandbox.host_ports  # a block no other sandbox on this machine hands out
            name = LOCAL_DOCKER_NAME if options.local_docker else SANDBOX_NAME
            info = SandboxInfo(server_id=server_id, name=name, address=f"127.0.0.1:{sandbox.port}")
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings.for_api(), pool=pool, host_ports=host_ports),
                host=options.host,
                port=options.port,
                log_config=None,
                access_log=options.verbose,
                lifespan="on",
                # An open event stream (a console tab, curl) never ends by itself: at Ctrl-C
                # it is cut after this long instead of holding the stop for ever.
                timeout_graceful_shutdown=STREAMS_CUT_AFTER,
            )
        )
        logging.getLogger("uvicorn.error").addFilter(_streams_cut_on_stop)
        parts: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "relay": lambda: _relay(settings, pool, stop),
            "projections": lambda: run_projections(pool, settings.database_url, stop),
            "workers": lambda: _workers(settings, pool, stop, options),
            "webhooks": lambda: run_webhooks(settings.for_workers(), pool, stop),
            "api": server.serve,
        }
        tasks = {name: asyncio.create_task(part(), name=name) for name, part in parts.items()}
        await _until_ready(server, stop)
        if server.started:
            on_ready(info)
        await stop.wait()
        server.should_exit = True
        for name, task in tasks.items():
            try:
                await asyncio.wait_for(task, timeout=30)
            except Exception:
                log.exception("%s did not stop cleanly", name)
    finally:
        if sandbox is not None:
            await sandbox.stop()
        await pool.close()


async def _relay(settings: Settings, pool: Pool, stop: asyncio.Event) -> None:
    config = RelayConfig(
        nats_url=settings.nats_url,
        stream=settings.nats_stream,
        subject_prefix=settings.subject_prefix,
    )
    await Relay(pool, settings.database_url, config).run(stop)


async def _workers(
    settings: Settings, pool: Pool, stop: asyncio.Event, options: DevOptions
) -> None:
    if options.sandbox_server:
        root = SandboxServer.root_of(options.data_dir, options.local_docker)
        await run_workers(settings.for_workers(), pool, stop, root=str(root))
    else:
        await run_workers(settings.for_workers(), pool, stop)


async def _until_ready(server: uvicorn.Server, stop: asyncio.Event) -> None:
    while not server.started and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
