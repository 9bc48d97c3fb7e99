"""`odoofleet dev --local-docker`: this machine registered as a server whose docker is the real
one, validated as active in one command; a machine whose docker can't be reached gets one line
and exit status 2."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from realdocker_fixtures import docker_engine_fixture  # noqa: F401
from realdocker_harness import DockerEngine
from sshd_harness import free_port
from test_dev_output import stop_dev
from waiting import eventually

from odoofleet.settings import Settings
from workers.server.layout import EDGE_NETWORK, PROXY_CONTAINER

DEV = [sys.executable, "-m", "odoofleet", "dev", "--local-docker"]


def dev_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")},
        "DATABASE_URL": settings.database_url,
        "NATS_URL": settings.nats_url,
        "ODOOFLEET_NATS_STREAM": settings.nats_stream,
        "ODOOFLEET_SUBJECT_PREFIX": settings.subject_prefix,
        **extra,
    }


def test_without_a_reachable_docker_it_says_so_in_one_line_and_exits_2(
    settings: Settings, tmp_path: Path
) -> None:
    unreachable = f"unix://{tmp_path / 'no-docker.sock'}"
    done = subprocess.run(
        [*DEV, "--data-dir", str(tmp_path / "data"), "--port", str(free_port())],
        # Only odoofleet's own output: no library's import-time warnings.
        env=dev_env(settings, DOCKER_HOST=unreachable, PYTHONWARNINGS="ignore"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("odoofleet dev --local-docker: ")
    assert "docker" in done.stderr.lower()


@pytest.fixture
def engine_held(docker_engine: DockerEngine) -> Iterator[DockerEngine]:
    """The engine to this test alone (the proxy's name and port 80 exist once per engine);
    the proxy and its network removed afterwards if this test made them."""
    with docker_engine.exclusive():
        before = docker_engine.inventory()
        yield docker_engine
        after = docker_engine.inventory() - before
        if PROXY_CONTAINER in after.containers:
            docker_engine.docker("rm", "-f", PROXY_CONTAINER, check=False)
        if EDGE_NETWORK in after.networks:
            docker_engine.docker("network", "rm", EDGE_NETWORK, check=False)


@pytest_asyncio.fixture
async def local_dev(
    engine_held: DockerEngine, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """A running `odoofleet dev --local-docker`: its API address and the token it printed."""
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *DEV, "--data-dir", str(tmp_path / "data"), "--port", str(port),
            env=dev_env(settings, **engine_held.env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        await eventually(
            lambda: "token:" in log.read_text(), timeout=120, message="odoofleet dev ready"
        )
        token = next(line for line in log.read_text().splitlines() if "token:" in line).split()[-1]
        yield f"http://127.0.0.1:{port}", token
    finally:
        await stop_dev(process)


@pytest.mark.realdocker
async def test_this_machine_becomes_an_active_server_that_hosts_a_real_instance(
    local_dev: tuple[str, str], engine_held: DockerEngine
) -> None:
    api, token = local_dev
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as client:

        async def servers() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await client.get("/api/servers")).json()["servers"]
            return found

        async def active() -> bool:
            return any(server["status"] == "active" for server in await servers())

        await eventually(active, timeout=240, interval=0.2, message="the server validated")
        [server] = await servers()
        proxy = engine_held.docker("inspect", "-f", "{{.State.Running}}", PROXY_CONTAINER)
        assert proxy.stdout.strip() == "true"  # the real proxy, on the real engine

        body = {"name": "Local Dev", "serverId": server["id"], "odooVersion": "17.0"}
        created = await client.post("/api/instances", json=body)
        assert created.status_code == 202, created.text
        path = f"/api/instances/{created.json()['id']}"

        async def status() -> str:
            return str((await client.get(path)).json()["status"])

        await eventually(lambda: _settled(status), timeout=300, interval=0.5, message="settled")
        assert await status() == "running", (await client.get(path)).text
        running = engine_held.inventory().matching("local-dev")
        assert running.containers  # real containers of the instance, on the real engine

        assert (await client.delete(path)).status_code == 202

        async def gone() -> bool:
            return (await client.get(path)).status_code == 404

        await eventually(gone, timeout=180, interval=0.5, message="the instance removed")

    assert server["name"] == "this machine (local Docker)"
    assert not engine_held.inventory().matching("local-dev")


async def _settled(status: Callable[[], Awaitable[str]]) -> bool:
    return await status() in ("running", "failed")
