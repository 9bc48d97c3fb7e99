"""The repository's compose.yaml starts the app on real Docker: the project's image built
offline (a wheelhouse made on the host, the test tier's python:3.11-slim), NATS healthy by its
own healthcheck, /readyz answering, a server and an instance create reaching the API, and
`docker compose down -v` leaving nothing behind."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_fixtures import server_body
from realdocker_fixtures import docker_engine_fixture  # noqa: F401
from realdocker_harness import ContractImage, DockerEngine, ensure_contract_image
from sshd_harness import free_port
from waiting import eventually

from api.tokens import mint_token
from odoofleet.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
# The project's own files, as the Dockerfile's `COPY . .` would take them (.dockerignore).
NOT_IN_CONTEXT = shutil.ignore_patterns(
    ".git", ".venv", "venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache",
    ".odoofleet", "tests", "bench", "docs", "wheelhouse",
)  # fmt: skip

pytestmark = pytest.mark.realdocker


def build_context(folder: Path) -> Path:
    """A copy of the checkout plus a wheelhouse of everything the image installs, made here
    (where the package index is reachable) because builds cannot reach it."""
    context = folder / "context"
    shutil.copytree(REPO, context, ignore=NOT_IN_CONTEXT)
    wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*wheel, "-w", str(context / "wheelhouse"), str(context), "setuptools>=68", "wheel"],
        check=True,
        timeout=600,
    )
    return context


class Stack:
    """`docker compose` on the context's compose.yaml, as an operator would run it."""

    def __init__(self, engine: DockerEngine, context: Path, api_port: int) -> None:
        self.engine = engine
        self.project = f"ofstack{uuid.uuid4().hex[:8]}"
        self.api = f"http://127.0.0.1:{api_port}"
        self.jwt_secret = secrets.token_urlsafe(48)
        self.env = {
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "ODOOFLEET_SECRET_KEY": secrets.token_urlsafe(32),
            "ODOOFLEET_JWT_SECRET": self.jwt_secret,
            "ODOOFLEET_API_PORT": str(api_port),
            "ODOOFLEET_IMAGE": f"odoofleet-stack-test:{self.project}",
            "ODOOFLEET_WHEELHOUSE": "wheelhouse",
        }
        self.argv = ["compose", "-p", self.project, "-f", str(context / "compose.yaml")]

    def compose(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *self.argv, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.engine.env, **self.env, "DOCKER_BUILDKIT": "0"},
        )

    def ok(self, *args: str) -> None:
        done = self.compose(*args)
        assert done.returncode == 0, f"docker compose {' '.join(args)}: {done.stderr[-3000:]}"

    def mounted_volumes(self) -> frozenset[str]:
        containers = self.compose("ps", "-aq").stdout.split()
        template = "{{range .Mounts}}{{.Name}} {{end}}"
        found = self.engine.docker("inspect", "-f", template, *containers).stdout.split()
        return frozenset(found)

    def token(self) -> str:
        settings = load_settings(
            {}, jwt_secret=self.jwt_secret, database_url="postgresql://", nats_url="nats://"
        )
        permissions = ["manage:instances", "manage:servers"]
        return mint_token(
            settings.for_api(), org="stack", sub="t", permissions=permissions, ttl_seconds=600
        )


@pytest.fixture
def stack(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[Stack]:
    ensure_contract_image(docker_engine, "python:3.11-slim", ContractImage("python"))
    context = build_context(tmp_path)
    with docker_engine.exclusive():
        stack = Stack(docker_engine, context, free_port())
        try:
            yield stack
        finally:
            stack.compose("down", "-v", "-t", "5")
            docker_engine.docker("image", "rm", stack.env["ODOOFLEET_IMAGE"], check=False)


async def test_compose_yaml_starts_the_app_and_takes_creates_then_leaves_nothing(
    stack: Stack,
) -> None:
    started = time.monotonic()
    stack.ok("build")
    built = time.monotonic()
    stack.ok("up", "-d")
    headers = {"Authorization": f"Bearer {stack.token()}"}
    async with httpx.AsyncClient(base_url=stack.api, headers=headers, timeout=10) as client:

        async def ready() -> bool:
            try:
                return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=300, message="the stack's /readyz answers 200")
        answered = time.monotonic()
        # The server's address is the stack's relay container (the database and NATS are the
        # control plane's own, which a server may not be): the validation the worker then
        # runs fails fast on a network this test made, and reaches nothing else.
        server = await client.post("/api/servers", json=server_body(host="relay", port=22))
        assert server.status_code in (201, 202), server.text
        body = {"name": "Stack Test", "serverId": server.json()["id"]}
        instance = await client.post("/api/instances", json=body)
        assert instance.status_code in (201, 202), instance.text

    states = stack.compose("ps", "-a", "--format", "{{.Service}} {{.State}}").stdout.split("\n")
    assert {line.split()[0] for line in states if line.endswith(" running")} >= {
        "api", "relay", "projector", "worker", "nats", "postgres",
    }  # fmt: skip
    mounted = stack.mounted_volumes()
    stack.ok("down", "-v", "-t", "10")

    # Everything on the engine is listed, not filtered by label: what is named after the
    # project, and every volume its containers mounted (anonymous ones included). Other
    # tests may use the engine meanwhile, so the rest of the inventory is not compared.
    left = stack.engine.inventory()
    assert not left.matching(stack.project)
    assert mounted
    assert not mounted & left.volumes
    print(
        f"compose stack: build {built - started:.1f}s, up to /readyz 200 "
        f"{answered - built:.1f}s, down -v left nothing"
    )
