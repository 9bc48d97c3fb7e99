"""The stand-in docker, driven over real SSH by the command builders the sagas use."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sshd_harness import (  # noqa: F401
    SshdServer,
    free_port,
    port_open,
    ssh_runner_fixture,
    sshd_fixture,
)
from waiting import eventually

from workers.health.probe import HealthTarget, health_command, parse_health_output
from workers.server.commands import (
    app_down_command,
    app_health_command,
    app_up_command,
    container_status_command,
    create_database_command,
    db_down_command,
    db_health_command,
    db_up_command,
    layout_command,
    login_page_command,
    networks_and_volumes_command,
    parse_container_status,
    proxy_layout_command,
    proxy_up_command,
    remove_directory_command,
    remove_network_command,
    remove_route_command,
    remove_volumes_command,
    restart_command,
    staged,
    stop_command,
    switch_route_command,
    verify_removed_command,
    write_active_color_command,
)
from workers.server.facts import parse_server_facts, preflight_problems, server_facts_command
from workers.server.layout import InstanceLayout, ProxyLayout
from workers.server.render import instance_files
from workers.server.render_proxy import render_proxy_compose, render_proxy_conf, render_route
from workers.server.shell import cmd
from workers.server.spec import InstanceSpec
from workers.ssh.runner import CommandResult, SshRunner

INSTANCE_ID = "6f0d3c1e-2b4a-4c8e-9d7f-0a1b2c3d4e5f"


def make_spec(**changes: Any) -> InstanceSpec:
    fields: dict[str, Any] = {
        "instance_id": INSTANCE_ID,
        "slug": "acme",
        "odoo_version": "17.0",
        "workers": 2,
        "max_cron_threads": 1,
        "limit_memory_hard": 2684354560,
        "limit_memory_soft": 2147483648,
        "limit_time_cpu": 600,
        "limit_time_real": 1200,
        "http_port_host": free_port(),
        "longpolling_port_host": free_port(),
        "auto_subdomain": "acme.odoo.localhost",
        "db_name": "acme",
        "admin_password": "admin",
        "pg_password": "pg",
    }
    fields.update(changes)
    return InstanceSpec(**fields)


class Server:
    """One test server: its sshd, a runner and the instance's layout under a tmp root."""

    def __init__(self, sshd: SshdServer, runner: SshRunner, spec: InstanceSpec) -> None:
        self.sshd, self.runner, self.spec = sshd, runner, spec
        self.layout = InstanceLayout(spec.slug, str(sshd.root))
        self.proxy = ProxyLayout(str(sshd.root))

    async def run(self, command: str) -> CommandResult:
        return await self.runner.run(self.sshd.connection_info(), command)

    async def ok(self, command: str) -> CommandResult:
        result = await self.run(command)
        assert result.ok, f"{command}\n{result.stderr}"
        return result

    async def upload(self, path: str, content: bytes | str, mode: int = 0o644) -> None:
        data = content.encode() if isinstance(content, str) else content
        await self.runner.upload(self.sshd.connection_info(), path, data, mode)

    async def lay_out(self) -> None:
        await self.ok(layout_command(self.layout))
        for rendered in instance_files(self.spec):
            await self.upload(f"{self.layout.dir}/{rendered.path}", rendered.content, rendered.mode)
        await self.ok(networks_and_volumes_command(self.layout, self.spec.instance_id))

    async def provision(self) -> None:
        """Provisioning up to a running blue app (ODOO-HOSTING.md §2.6 steps 0 to 6)."""
        await self.lay_out()
        await self.ok(db_up_command(self.layout))
        await self.ok(create_database_command(self.layout, self.spec.db_name, "17.0"))
        await self.ok(app_up_command(self.layout, "blue"))

    async def proxy_up(self) -> None:
        await self.ok(proxy_layout_command(self.proxy))
        await self.upload(self.proxy.compose, render_proxy_compose())
        await self.upload(staged(self.proxy.conf_file), render_proxy_conf())
        await self.ok(proxy_up_command(self.proxy))

    async def teardown(self) -> None:
        await self.ok(remove_route_command(self.proxy, self.spec.slug))
        for color in ("blue", "green"):
            await self.ok(app_down_command(self.layout, color))
        await self.ok(db_down_command(self.layout))
        await self.ok(remove_volumes_command(self.layout))
        await self.ok(remove_network_command(self.layout))
        await self.ok(remove_directory_command(self.layout))


@pytest.fixture
def server(sshd: SshdServer, ssh_runner: SshRunner) -> Server:
    return Server(sshd, ssh_runner, make_spec())


def read(path: str) -> str:
    return Path(path).read_text()


def listing(folder: str) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_a_running_app_serves_health_on_its_host_port_until_it_stops(
    server: Server,
) -> None:
    port = server.spec.http_port_host
    await server.provision()

    assert get(f"http://127.0.0.1:{port}/web/health") == (200, '{"status": "pass"}')
    assert get(f"http://127.0.0.1:{port}/web/login?db=acme")[0] == 200
    await server.ok(stop_command(server.layout, "blue"))

    await eventually(lambda: not port_open(port), message="health port closed after stop")
    status = parse_container_status(
        (await server.ok(container_status_command(server.layout, "blue"))).stdout
    )
    assert status.status == "exited"


async def test_readiness_passes_on_a_provisioned_instance(server: Server) -> None:
    await server.provision()

    status = await server.ok(container_status_command(server.layout, "blue"))
    health = await server.ok(app_health_command(server.layout, "blue"))
    await server.ok(login_page_command(server.layout, "blue", "acme"))

    assert parse_container_status(status.stdout).status == "running"
    assert parse_container_status(status.stdout).health == "healthy"
    assert json.loads(health.stdout) == {"status": "pass"}
    assert (await server.ok(db_health_command(server.layout))).stdout.strip() == "healthy"


async def test_creating_the_database_twice_initialises_it_once(server: Server) -> None:
    await server.provision()

    again = await server.ok(create_database_command(server.layout, "acme", "17.0"))

    assert again.stdout.strip() == "database acme exists"
    runs = [argv for argv in server.sshd.docker_argvs() if "run" in argv]
    assert len(runs) == 1
    assert runs[0][-7:] == [
        "odoo",
        "-d",
        "acme",
        "-i",
        "base",
        "--stop-after-init",
        "--without-demo=all",
    ]


async def test_the_app_needs_its_external_network_and_volume(server: Server) -> None:
    await server.ok(layout_command(server.layout))
    for rendered in instance_files(server.spec):
        await server.upload(f"{server.layout.dir}/{rendered.path}", rendered.content)

    result = await server.run(app_up_command(server.layout, "blue"))

    assert result.exit_status == 1
    assert "declared as external, but could not be found" in result.stderr


async def test_an_app_whose_database_is_down_loops_on_restart(server: Server) -> None:
    await server.provision()
    db_compose = server.layout.db_compose
    await server.ok(cmd("docker", "compose", "-p", "acme-db", "-f", db_compose, "stop"))

    await server.ok(restart_command(server.layout, "blue"))

    status = await server.ok(container_status_command(server.layout, "blue"))
    assert parse_container_status(status.stdout).status == "restarting"
    assert parse_container_status(status.stdout).restart_count == 1


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ("compose-up-app", "OCI runtime create failed"),
        ("create-db", "Failed to initialize database"),
        ("login-page", "answered HTTP 500"),
        ("health-probe", "returned error: 500"),
    ],
)
async def test_an_armed_failure_fails_its_step_with_a_message(
    server: Server, switch: str, expected: str
) -> None:
    steps = {
        "compose-up-app": app_up_command(server.layout, "blue"),
        "create-db": create_database_command(server.layout, "acme", "17.0"),
        "login-page": login_page_command(server.layout, "blue", "acme"),
        "health-probe": app_health_command(server.layout, "blue"),
    }
    if switch in ("compose-up-app", "create-db"):
        await server.lay_out()
        await server.ok(db_up_command(server.layout))
    else:
        await server.provision()
    server.sshd.arm(switch)

    result = await server.run(steps[switch])

    assert not result.ok
    assert expected in result.stderr


@pytest.mark.parametrize(("switch", "color"), [("db-healthy", None), ("readiness", "blue")])
async def test_an_armed_health_failure_shows_as_unhealthy(
    server: Server, switch: str, color: str | None
) -> None:
    server.sshd.arm(switch)
    await server.provision()

    if color is None:
        shown = (await server.ok(db_health_command(server.layout))).stdout.strip()
    else:
        line = (await server.ok(container_status_command(server.layout, color))).stdout
        shown = parse_container_status(line).health

    assert shown == "unhealthy"


async def test_a_route_nginx_rejects_is_rolled_back(server: Server) -> None:
    await server.provision()
    await server.proxy_up()
    route = server.proxy.route("acme")
    await server.upload(server.proxy.staged_route("acme"), render_route(server.spec, "blue"))
    await server.ok(switch_route_command(server.proxy, "acme"))
    server.sshd.arm("nginx-test")

    await server.upload(server.proxy.staged_route("acme"), render_route(server.spec, "green"))
    result = await server.run(switch_route_command(server.proxy, "acme"))

    assert result.exit_status == 1
    assert "the previous one is back" in result.stderr
    assert "acme-blue-odoo-1" in read(route)
    assert listing(server.proxy.routes_dir) == ["acme.conf"]


async def test_the_active_colour_is_written_last_and_whole(server: Server) -> None:
    await server.ok(layout_command(server.layout))

    await server.ok(write_active_color_command(server.layout, "blue"))
    await server.ok(write_active_color_command(server.layout, "green"))

    assert read(server.layout.active_color) == "green\n"
    assert ".tmp" not in " ".join(listing(server.layout.dir))


async def test_the_health_command_reports_every_instance(server: Server) -> None:
    await server.provision()
    server.sshd.override_container(
        "acme-blue-odoo-1", RestartCount=3, OOMKilled=True, MemoryBytes=512 * 2**20, CPUPercent=42.5
    )
    gone = HealthTarget("00000000-0000-4000-8000-000000000000", "gone", "blue", free_port())
    here = HealthTarget(INSTANCE_ID, "acme", "blue", server.spec.http_port_host)

    samples = parse_health_output((await server.ok(health_command([here, gone]))).stdout)

    running, missing = samples
    assert (running.container_state, running.health) == ("running", "healthy")
    assert (running.restart_count, running.oom_killed) == (3, True)
    assert running.memory_bytes == 512 * 2**20
    assert running.memory_limit_bytes is not None
    assert running.memory_limit_bytes > running.memory_bytes
    assert running.cpu_percent == 42.5
    assert running.http_status == 200
    assert running.response_time_ms is not None
    assert (missing.container_state, missing.http_status, missing.memory_bytes) == (
        "missing",
        None,
        None,
    )


async def test_teardown_removes_everything_and_can_run_again(server: Server) -> None:
    await server.provision()
    await server.proxy_up()
    await server.upload(server.proxy.staged_route("acme"), render_route(server.spec, "blue"))
    await server.ok(switch_route_command(server.proxy, "acme"))

    await server.teardown()
    await server.teardown()

    await server.ok(verify_removed_command(server.layout, server.proxy, INSTANCE_ID))
    assert not port_open(server.spec.http_port_host)
    assert server.sshd.container("acme-db-db-1") is None


async def test_a_stopped_instance_tears_down_completely(server: Server) -> None:
    """`ps -aq` finds the stopped colour, so its `down` runs before the network goes (the
    stand-in once ignored combined flags: the teardown skipped it and stuck on the network)."""
    await server.provision()
    await server.proxy_up()
    await server.ok(stop_command(server.layout, "blue"))

    await server.teardown()

    await server.ok(verify_removed_command(server.layout, server.proxy, INSTANCE_ID))
    assert server.sshd.container("acme-blue-odoo-1") is None


async def test_verify_lists_what_teardown_left_behind(server: Server) -> None:
    await server.provision()

    result = await server.run(verify_removed_command(server.layout, server.proxy, INSTANCE_ID))

    assert result.exit_status == 1
    assert "acme-blue-odoo-1" in result.stderr
    assert "acme_filestore" in result.stderr


async def test_server_facts_describe_the_server(server: Server) -> None:
    facts = parse_server_facts(
        (await server.ok(server_facts_command(str(server.sshd.root)))).stdout
    )

    assert facts.docker_access
    assert facts.docker_version == "27.3.1"
    assert facts.compose_version == "2.29.7"
    assert facts.cpu_cores >= 1
    assert facts.ram_total_bytes > facts.ram_available_bytes > 0
    assert facts.disk_free_bytes > 0
    assert facts.os_name != "unknown"
    assert facts.root_writable
    assert preflight_problems(facts, min_disk_free_bytes=1, min_ram_available_bytes=1) == []


async def test_a_user_outside_the_docker_group_is_a_preflight_problem(server: Server) -> None:
    server.sshd.arm("docker-access")

    facts = parse_server_facts(
        (await server.ok(server_facts_command(str(server.sshd.root)))).stdout
    )

    assert not facts.docker_access
    assert facts.docker_error is not None
    assert "permission denied" in facts.docker_error
    problems = preflight_problems(facts, min_disk_free_bytes=1, min_ram_available_bytes=2**60)
    assert any("cannot use Docker" in problem for problem in problems)
    assert any("of RAM available" in problem for problem in problems)
