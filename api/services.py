"""What the handlers work with, built when the app starts (never at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TypeAlias

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import NamedDependency
from psycopg_pool import AsyncConnectionPool

from api.config import ApiConfig
from api.consistency import ReadYourWrites
from api.idempotency import Idempotency
from api.rate_limit import RateLimit
from api.written_instances import WrittenInstances
from commands.defaults import HostPorts
from commands.instance_state import InstanceState, evolve
from commands.locks import StreamLocks
from commands.reservation import PortsState
from commands.snapshots import Snapshots
from commands.stream_states import StreamStates
from events.catalog import build_registry
from events.legacy_reservations import LegacyLabels
from events.pool import Pool
from events.secrets import Vault
from events.store import EventStore
from workers.ssh.control_plane_addresses import server_network_policy
from workers.ssh.network_policy import NetworkPolicy


@dataclass(frozen=True, slots=True)
class Services:
    settings: ApiConfig
    pool: Pool
    store: EventStore
    vault: Vault
    reads: ReadYourWrites
    idempotency: Idempotency
    host_ports: HostPorts
    locks: StreamLocks
    ports: Snapshots[PortsState]
    legacy_labels: LegacyLabels
    server_addresses: NetworkPolicy
    validations: RateLimit
    # What this process's writes to instances left: their states (validated by each append's
    # expected version) and the views they answered with.
    instance_states: StreamStates[InstanceState]
    written_instances: WrittenInstances


def build_services(settings: ApiConfig, pool: Pool, host_ports: HostPorts) -> Services:
    store = EventStore(pool, build_registry())
    return Services(
        settings=settings,
        pool=pool,
        store=store,
        vault=Vault(pool, settings.secret_key),
        reads=ReadYourWrites(pool),
        idempotency=Idempotency(pool),
        host_ports=host_ports,
        locks=StreamLocks(),
        ports=Snapshots(),
        legacy_labels=LegacyLabels(),
        server_addresses=server_network_policy(
            allowed=settings.server_allowed_networks,
            denied=settings.server_denied_networks,
            database_url=settings.database_url,
            nats_url=settings.nats_url,
        ),
        validations=RateLimit(settings.server_validations_per_minute),
        instance_states=StreamStates(evolve),
        written_instances=WrittenInstances(store),
    )


async def open_api_pool(settings: ApiConfig, max_size: int = 32) -> Pool:
    """A pool that opens without waiting: the API starts while PostgreSQL is down and
    answers 503 until it is back, instead of failing to start."""
    pool: Pool = AsyncConnectionPool(
        settings.database_url,
        min_size=2,
        max_size=max_size,
        kwargs={"autocommit": True, "options": "-c TimeZone=UTC"},
        open=False,
        timeout=3.0,
    )
    await pool.open(wait=False)
    return pool


def lifespan(
    settings: ApiConfig, pool: Pool | None, host_ports: HostPorts
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Opens the pool (unless the caller passed one it owns) and builds the Services."""

    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        owned = pool is None
        used = await open_api_pool(settings) if pool is None else pool
        app.state.services = build_services(settings, used, host_ports)
        try:
            yield
        finally:
            if owned:
                await used.close()

    return run


Deps: TypeAlias = NamedDependency[Services]
"""How a handler asks for the Services."""


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services
