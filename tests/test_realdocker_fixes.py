"""What the first run against real Docker found, each fix proven on the real-Docker tier
(issue 12 item 4): the admin user's password, a proxy never recreated under live instances,
host ports on 127.0.0.1, no anonymous volumes, no database password on a command line,
readiness that fails fast on a crash loop (and a failed redeploy that stops its colour), and
an observer that follows the colour really running."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from health_fixtures import HealthWorld
from projection_fixtures import projections_running
from realdocker_fixtures import (  # noqa: F401
    DockerFleet,
    DockerSshd,
    docker_engine_fixture,
    docker_fleet_fixture,
    docker_server_fixture,
    host,
    outcome,
)
from realdocker_probes import PROXY_PORT, Poller, docker, inventory
from saga_fixtures import ORG, Instance
from waiting import eventually

from events.instance import (
    ActionFailed,
    AdminPasswordRotated,
    AdminPasswordRotationFailed,
    AdminPasswordRotationRequested,
    InstanceCreated,
    InstanceProvisioned,
    InstanceRedeployed,
    InstanceRemoved,
    InstanceUpdated,
    ProvisioningFailed,
    RedeployRequested,
    RemovalAbandoned,
)
from events.pool import Pool
from events.server import ServerValidated, server_stream
from events.store import ANY
from projections.servers import get_server

pytestmark = pytest.mark.realdocker

ANONYMOUS = re.compile(r"[0-9a-f]{64}")


async def provision(
    fleet: DockerFleet, server_id: str, slug: str, **options: Any
) -> tuple[Instance, float]:
    started = time.monotonic()
    instance = await fleet.create_instance(server_id, slug=slug, **options)
    done = await outcome(
        fleet, instance, instance.operation_id, InstanceProvisioned, ProvisioningFailed
    )
    assert isinstance(done, InstanceProvisioned), done
    return instance, time.monotonic() - started


@pytest_asyncio.fixture
async def server_id(docker_fleet: DockerFleet) -> str:
    server_id = await docker_fleet.register_server()
    await docker_fleet.wait_for(server_stream(server_id), ServerValidated, timeout=60)
    return server_id


@pytest_asyncio.fixture
async def acme(docker_fleet: DockerFleet, server_id: str) -> Instance:
    instance, elapsed = await provision(docker_fleet, server_id, "acme")
    print(f"\ncreate -> InstanceProvisioned: {elapsed:.1f}s")
    return instance


async def created(fleet: DockerFleet, instance: Instance) -> InstanceCreated:
    [event] = [e for e in await fleet.events(instance.stream) if isinstance(e, InstanceCreated)]
    return event


def authenticate(instance: Instance, login: str, password: str) -> dict[str, Any]:
    """Odoo's JSON-RPC login through the proxy, as the web client sends it."""
    params = {"db": instance.slug.replace("-", "_"), "login": login, "password": password}
    body = {"jsonrpc": "2.0", "method": "call", "params": params}
    connection = http.client.HTTPConnection("127.0.0.1", PROXY_PORT, timeout=10)
    try:
        connection.request(
            "POST",
            "/web/session/authenticate",
            body=json.dumps(body),
            headers={"Host": host(instance), "Content-Type": "application/json"},
        )
        answer: dict[str, Any] = json.loads(connection.getresponse().read())
        return answer
    finally:
        connection.close()


def logs_in(instance: Instance, password: str) -> bool:
    answer = authenticate(instance, "admin", password)
    if "error" in answer:
        assert answer["error"]["data"]["name"] == "odoo.exceptions.AccessDenied", answer
        return False
    return bool(answer["result"]["uid"])


async def test_the_admin_logs_in_with_the_generated_password_and_never_with_admin_admin(
    docker_fleet: DockerFleet, acme: Instance
) -> None:
    generated = await asyncio.to_thread(logs_in, acme, acme.admin_user_password)
    default = await asyncio.to_thread(logs_in, acme, "admin")
    print(f"\nadmin logs in with the generated password: {generated}, with admin: {default}")
    assert generated
    assert not default

    rotated_to = f"rotated-{uuid.uuid4().hex}"
    sealed = await docker_fleet.vault.seal(acme.stream, rotated_to)
    operation_id = await docker_fleet.request(
        acme, AdminPasswordRotationRequested, admin_user_password=sealed
    )
    done = await outcome(
        docker_fleet, acme, operation_id, AdminPasswordRotated, AdminPasswordRotationFailed
    )

    assert isinstance(done, AdminPasswordRotated), done
    assert await asyncio.to_thread(logs_in, acme, rotated_to)
    assert not await asyncio.to_thread(logs_in, acme, acme.admin_user_password)
    assert not await asyncio.to_thread(logs_in, acme, "admin")


async def test_another_instance_coming_and_going_never_recreates_the_proxy(
    docker_fleet: DockerFleet, server_id: str, acme: Instance
) -> None:
    """Before: a new set of host ports recreated odoofleet-proxy, ~300 ms of refused
    connections for every other instance (3 failed requests in a 100 ms poll)."""
    engine = docker_fleet.sshd.engine
    identity = "{{.Id}} {{.State.StartedAt}}"
    proxy_before = await docker(engine, "inspect", "-f", identity, "odoofleet-proxy")
    with Poller(host(acme), interval=0.05) as poller:
        await eventually(lambda: poller.polls > 10, timeout=10, message="polling")
        other, _ = await provision(docker_fleet, server_id, "other")
        removal = await docker_fleet.remove(other)
        removed = await outcome(docker_fleet, other, removal, InstanceRemoved, RemovalAbandoned)
        await asyncio.sleep(0.5)

    print(f"\nacme while other came and went: {len(poller.failures)} of {poller.polls} failed")
    assert isinstance(removed, InstanceRemoved), removed
    assert poller.failures == []
    assert await docker(engine, "inspect", "-f", identity, "odoofleet-proxy") == proxy_before


async def test_an_instance_s_host_ports_are_published_on_127_0_0_1_only(
    docker_fleet: DockerFleet, acme: Instance
) -> None:
    engine = docker_fleet.sshd.engine
    event = await created(docker_fleet, acme)
    ports = {event.http_port_host, event.longpolling_port_host}

    published = (await docker(engine, "port", "acme-ports")).splitlines()
    listening = await asyncio.to_thread(
        subprocess.run, ["ss", "-ltnH"], capture_output=True, text=True, check=True
    )
    addresses = {
        line.split()[3].rsplit(":", 1)[0]
        for line in listening.stdout.splitlines()
        if int(line.split()[3].rsplit(":", 1)[1]) in ports
    }

    print(f"\nhost ports published: {published}; listening on: {sorted(addresses)}")
    assert sorted(published) == sorted(f"{p}/tcp -> 127.0.0.1:{p}" for p in ports)
    assert addresses == {"127.0.0.1"}


async def test_no_anonymous_volume_through_create_redeploy_and_teardown(
    docker_fleet: DockerFleet, server_id: str
) -> None:
    """The odoo image's VOLUMEs are all mounted from the instance's named volumes: before,
    every colour container (and each `compose run --rm`) left one that nothing removed."""
    engine = docker_fleet.sshd.engine
    before = await inventory(engine)
    acme, _ = await provision(docker_fleet, server_id, "acme")
    created_volumes = (await inventory(engine) - before).volumes
    redeploy = await docker_fleet.redeploy(acme, "green")
    assert isinstance(
        await outcome(docker_fleet, acme, redeploy, InstanceRedeployed, ActionFailed),
        InstanceRedeployed,
    )
    redeployed_volumes = (await inventory(engine) - before).volumes
    removal = await docker_fleet.remove(acme)
    removed = await outcome(docker_fleet, acme, removal, InstanceRemoved, RemovalAbandoned)
    assert isinstance(removed, InstanceRemoved), removed
    left = await inventory(engine) - before

    anonymous = [v for v in redeployed_volumes if ANONYMOUS.fullmatch(v)]
    print(f"\nanonymous volumes after create and redeploy: {len(anonymous)}; left: {left}")
    named = {"acme_pgdata", "acme_filestore", "acme_extra_addons"}
    assert set(created_volumes) == named
    assert set(redeployed_volumes) == named
    assert not [v for v in left.volumes if ANONYMOUS.fullmatch(v)]
    assert left.volumes == frozenset()


class CommandLines:
    """Every process's command line on this machine (the server's containers share its
    kernel), sampled every 20 ms in a thread of its own."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            shown = subprocess.run(["ps", "-eww", "-o", "args="], capture_output=True, text=True)
            self.seen.update(shown.stdout.splitlines())
            self.samples += 1
            self._stop.wait(0.02)


async def test_the_database_password_is_on_no_command_line(
    docker_fleet: DockerFleet, server_id: str
) -> None:
    """The official entrypoint appends `--db_password <password>` to odoo's command line
    unless odoo.conf sets it; the launcher gives it to Odoo's own environment instead. Sampled
    through the whole provisioning: the database creation, the admin's shell and the app."""
    with CommandLines() as lines:
        acme, _ = await provision(docker_fleet, server_id, "acme")
        await asyncio.sleep(0.5)
    password = await docker_fleet.vault.open(
        acme.stream, (await created(docker_fleet, acme)).db_password
    )
    engine = docker_fleet.sshd.engine
    odoo = [line for line in lines.seen if "odoo" in line]
    showing = [line for line in lines.seen if password in line]
    print(f"\n{lines.samples} samples, {len(odoo)} odoo command lines, {len(showing)} with it")

    assert odoo
    assert showing == []
    assert [line for line in lines.seen if "--db_password" in line] == []
    top = await docker(engine, "top", "acme-blue-odoo-1", "-eww", "-o", "args")
    assert password not in top
    config = await docker(engine, "inspect", "-f", "{{json .Config}}", "acme-blue-odoo-1")
    assert password not in config


async def test_a_crash_looping_colour_fails_readiness_fast_and_is_stopped(
    docker_fleet: DockerFleet, server_id: str
) -> None:
    """Odoo 19 reads libpq's PG* ahead of odoo.conf: a colour told a database host that does
    not exist exits at once and Docker restarts it, "running, starting" at most looks. Before,
    it was caught after 184 s and 6 restarts, and left restarting."""
    engine = docker_fleet.sshd.engine
    broken, _ = await provision(docker_fleet, server_id, "broken", odoo_version="19.0")
    env_vars = await docker_fleet.vault.seal_all(broken.stream, {"PGHOST": "nowhere.invalid"})
    update = InstanceUpdated(instance_id=broken.id, env_vars=env_vars, updated_at=datetime.now(UTC))
    await docker_fleet.store.append(broken.stream, ANY, [update], broken.metadata)
    began = time.monotonic()
    operation_id = await docker_fleet.request(broken, RedeployRequested, target_color="green")
    failed = await outcome(docker_fleet, broken, operation_id, ActionFailed, InstanceRedeployed)
    took = time.monotonic() - began

    print(f"\ncrash loop caught in {took:.1f}s: {getattr(failed, 'message', '')}")
    assert isinstance(failed, ActionFailed), failed
    assert failed.step == "readiness-green"
    assert "not within" not in failed.message
    assert took < 30
    assert "broken-green-odoo-1 was stopped" in failed.message
    state = await docker(engine, "inspect", "-f", "{{.State.Status}}", "broken-green-odoo-1")
    assert state == "exited"
    assert (
        await docker(engine, "inspect", "-f", "{{.State.Status}}", "broken-blue-odoo-1")
        == "running"
    )


async def test_no_false_unhealthy_while_a_redeploy_switches_colours(
    docker_fleet: DockerFleet, server_id: str, acme: Instance, pool: Pool, database_url: str
) -> None:
    """The read model names the old colour until InstanceRedeployed is projected, after the
    old colour has stopped. With the projections held back from the redeploy on, the
    observer must still take the colour that runs (before: "unhealthy: … exited", which took
    an instance from 100 to 67)."""
    world = HealthWorld(docker_fleet, server_id, acme)
    try:
        async with projections_running(pool, database_url):
            await world.wait_instance_status("running")

            async def server_active() -> bool:
                view = await get_server(pool, ORG, server_id)
                return view is not None and view.status == "active"

            await eventually(server_active, timeout=30, message="server active")
            assert await world.cycle() == 1
        operation_id = await docker_fleet.redeploy(acme, "green")
        done = await outcome(docker_fleet, acme, operation_id, InstanceRedeployed, ActionFailed)
        assert isinstance(done, InstanceRedeployed), done
        for _ in range(2):
            await world.cycle(after=400.0)  # a heartbeat is due: every cycle records
        observed = await world.observations()
    finally:
        await world.close()

    assert [o.status for o in observed] == ["healthy"] * 3
    assert all(o.container_state == "running" for o in observed)
