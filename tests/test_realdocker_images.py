"""The tier's postgres:16 and nginx:1.27-alpine images keep the official images' documented
contracts, the parts odoofleet and its tests rely on; a broken image fails here first."""

from __future__ import annotations

import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from realdocker_fixtures import DockerSshd, docker_engine_fixture, docker_server_fixture  # noqa: F401
from realdocker_harness import DockerEngine
from sshd_harness import free_port, wait_until

from workers.server.render_proxy import ROUTES_MOUNT, render_proxy_conf
from workers.ssh.runner import SshRunner

pytestmark = pytest.mark.realdocker

POSTGRES = "postgres:16"
NGINX = "nginx:1.27-alpine"


class Scratch:
    """Containers, volumes and networks of one test, all named with its own prefix."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self.prefix = f"odf-img-{secrets.token_hex(4)}"

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def run(self, *args: str, check: bool = True) -> str:
        return self.engine.docker("run", *args, check=check).stdout.strip()

    def exec(self, container: str, *args: str, check: bool = True) -> str:
        return self.engine.docker("exec", container, *args, check=check).stdout.strip()

    def clean(self) -> None:
        self.engine.remove(self.engine.inventory().matching(self.prefix))


@pytest.fixture
def scratch(docker_engine: DockerEngine) -> Iterator[Scratch]:
    work = Scratch(docker_engine)
    yield work
    work.clean()


# ---- postgres:16 --------------------------------------------------------------------------------


def start_postgres(scratch: Scratch, name: str, volume: str, *env: str, net: str = "") -> str:
    container = scratch.name(name)
    network = ["--network", net] if net else []
    options = [f"--env={item}" for item in env]
    scratch.run("-d", "--name", container, *network, "-v", f"{volume}:/var/lib/postgresql/data",
                *options, POSTGRES)  # fmt: skip
    return container


def wait_serving(scratch: Scratch, container: str) -> None:
    """Ready on TCP: the server after initialisation, not the socket-only one during it."""

    def ready() -> bool:
        state = scratch.engine.docker("inspect", "-f", "{{.State.Running}}", container)
        if state.stdout.strip() != "true":
            logs = scratch.engine.docker("logs", container, check=False)
            raise AssertionError(f"{container} stopped: {logs.stdout}{logs.stderr}")
        probe = ["pg_isready", "-q", "-h", "127.0.0.1"]
        return scratch.engine.docker("exec", container, *probe, check=False).returncode == 0

    wait_until(ready, timeout=60, message=f"{container} serving")


def remote_login(scratch: Scratch, net: str, host: str, password: str, sql: str) -> str | None:
    """What `sql` prints, run from another container over the network; None if refused."""
    done = scratch.engine.docker(
        "run", "--rm", "--network", net, "--env", f"PGPASSWORD={password}",
        "--entrypoint", "psql", POSTGRES,
        "-h", host, "-U", "odoo", "-d", "shop", "-tAc", sql,
        check=False,
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else None


def test_postgres_initialises_an_empty_volume_as_uid_999_with_user_password_and_database(
    scratch: Scratch,
) -> None:
    net, volume = scratch.name("net"), scratch.name("data")
    scratch.engine.docker("network", "create", net)
    db = start_postgres(scratch, "db", volume, "POSTGRES_USER=odoo", "POSTGRES_PASSWORD=first",
                        "POSTGRES_DB=shop", net=net)  # fmt: skip
    wait_serving(scratch, db)

    assert scratch.exec(db, "stat", "-c", "%u:%g %a", "/var/lib/postgresql/data") == "999:999 700"
    assert scratch.exec(db, "id", "-u", "postgres") == "999"
    processes = scratch.engine.docker("top", db, "-o", "pid,uid").stdout.splitlines()[1:]
    assert {line.split()[1] for line in processes} == {"999"}
    # The healthcheck odoofleet renders, and the database listing its create-db step reads
    # over the local socket without a password.
    health = ["pg_isready", "-U", "odoo", "-d", "postgres"]
    assert scratch.engine.docker("exec", db, *health, check=False).returncode == 0
    listing = scratch.exec(db, "psql", "-U", "odoo", "-d", "postgres", "-lqt")
    assert "shop" in [line.split("|")[0].strip() for line in listing.splitlines()]
    assert remote_login(scratch, net, db, "first", "select current_user") == "odoo"
    assert remote_login(scratch, net, db, "wrong", "select 1") is None


def test_postgres_reads_the_password_from_postgres_password_file(
    scratch: Scratch, tmp_path: Path
) -> None:
    net, volume = scratch.name("net"), scratch.name("data")
    scratch.engine.docker("network", "create", net)
    secret = tmp_path / "pg_password"
    secret.write_text("from-a-file")
    secret.chmod(0o644)
    container = scratch.name("db")
    scratch.run("-d", "--name", container, "--network", net,
                "-v", f"{volume}:/var/lib/postgresql/data", "-v", f"{secret}:/run/secrets/pg:ro",
                "-e", "POSTGRES_USER=odoo", "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/pg",
                "-e", "POSTGRES_DB=shop", POSTGRES)  # fmt: skip
    wait_serving(scratch, container)

    assert remote_login(scratch, net, container, "from-a-file", "select 1") == "1"
    assert remote_login(scratch, net, container, "/run/secrets/pg", "select 1") is None
    # The password is nowhere on a command line.
    # -ww: ps cuts the args column to 80 columns otherwise, which would hide a password.
    command_lines = scratch.engine.docker("top", container, "-eww", "-o", "pid,args").stdout
    assert "from-a-file" not in command_lines


def test_postgres_data_and_first_password_survive_a_new_container_on_the_same_volume(
    scratch: Scratch,
) -> None:
    net, volume = scratch.name("net"), scratch.name("data")
    scratch.engine.docker("network", "create", net)
    first = start_postgres(scratch, "one", volume, "POSTGRES_USER=odoo",
                           "POSTGRES_PASSWORD=first", "POSTGRES_DB=shop", net=net)  # fmt: skip
    wait_serving(scratch, first)
    scratch.exec(first, "psql", "-U", "odoo", "-d", "shop", "-c", "create table kept (n int)")
    scratch.exec(first, "psql", "-U", "odoo", "-d", "shop", "-c", "insert into kept values (42)")
    scratch.engine.docker("rm", "-f", first)

    second = start_postgres(scratch, "two", volume, "POSTGRES_USER=odoo",
                            "POSTGRES_PASSWORD=second", "POSTGRES_DB=shop", net=net)  # fmt: skip
    wait_serving(scratch, second)

    assert remote_login(scratch, net, second, "first", "select n from kept") == "42"
    assert remote_login(scratch, net, second, "second", "select 1") is None
    assert "Skipping initialization" in scratch.engine.docker("logs", second).stdout


def test_postgres_refuses_to_initialise_without_a_password(scratch: Scratch) -> None:
    done = scratch.engine.docker(
        "run", "--rm", "-e", "POSTGRES_USER=odoo", POSTGRES, check=False
    )  # fmt: skip
    assert done.returncode != 0
    assert "superuser password is not specified" in done.stderr


def test_postgres_has_pg_isready_and_psql_on_path(scratch: Scratch) -> None:
    found = scratch.run("--rm", "--entrypoint", "sh", POSTGRES, "-c",
                        "command -v pg_isready && command -v psql")  # fmt: skip
    assert [Path(line).name for line in found.splitlines()] == ["pg_isready", "psql"]


# ---- nginx:1.27-alpine --------------------------------------------------------------------------


def server_block(host: str, body: str) -> str:
    return f"server {{ listen 80; server_name {host}; location / {{ return 200 '{body}'; }} }}\n"


def get(port: int, host: str, path: str = "/") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def start_nginx(scratch: Scratch, conf_d: Path) -> tuple[str, int]:
    container, port = scratch.name("proxy"), free_port()
    scratch.run("-d", "--name", container, "-p", f"127.0.0.1:{port}:80",
                "-v", f"{conf_d}:/etc/nginx/conf.d:ro", NGINX)  # fmt: skip

    def answers() -> bool:
        try:
            get(port, "probe")
        except OSError:
            return False
        return True

    wait_until(answers, timeout=30, message="nginx answering")
    return container, port


def test_nginx_serves_its_default_page_and_logs_to_stdout_and_stderr(scratch: Scratch) -> None:
    container, port = scratch.name("web"), free_port()
    scratch.run("-d", "--name", container, "-p", f"127.0.0.1:{port}:80", NGINX)
    wait_until(lambda: _status(port) == 200, timeout=30, message="default page")

    assert "Welcome to nginx!" in get(port, "localhost")[1]
    inspect = scratch.engine.docker("inspect", "-f", "{{json .Config.Cmd}} {{.Config.StopSignal}}",
                                    container)  # fmt: skip
    assert inspect.stdout.strip() == '["nginx","-g","daemon off;"] SIGQUIT'
    assert get(port, "localhost", "/missing.html")[0] == 404
    logs = scratch.engine.docker("logs", container)
    assert '"GET / HTTP/1.1" 200' in logs.stdout
    assert "missing.html" in logs.stdout
    # The error log is the container's stderr.
    assert 'open() "/usr/share/nginx/html/missing.html" failed' in logs.stderr
    workers = scratch.engine.docker("top", container, "-eww", "-o", "pid,uid,args").stdout
    assert any(line.split()[1:4] == ["101", "nginx:", "worker"] for line in workers.splitlines())


def _status(port: int) -> int | None:
    try:
        return get(port, "localhost")[0]
    except OSError:
        return None


def test_nginx_includes_conf_d_and_reload_picks_up_a_new_file_without_failing_requests(
    scratch: Scratch, tmp_path: Path
) -> None:
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "a.conf").write_text(server_block("a.test", "site a"))
    container, port = start_nginx(scratch, conf_d)
    assert get(port, "a.test") == (200, "site a")
    assert get(port, "b.test") == (200, "site a")  # the only server is the default one

    failures: list[str] = []
    polls = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal polls
        while not stop.is_set():
            polls += 1
            try:
                if get(port, "a.test") != (200, "site a"):
                    failures.append("wrong answer")
            except OSError as error:
                failures.append(str(error))
            time.sleep(0.01)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        (conf_d / "b.conf").write_text(server_block("b.test", "site b"))
        assert "successful" in scratch.engine.docker("exec", container, "nginx", "-t").stderr
        scratch.exec(container, "nginx", "-s", "reload")
        wait_until(lambda: get(port, "b.test") == (200, "site b"), timeout=10, message="b.test")
    finally:
        stop.set()
        poller.join()

    assert failures == []
    assert polls > 5


def test_nginx_t_rejects_a_bad_file_and_the_running_config_keeps_serving(
    scratch: Scratch, tmp_path: Path
) -> None:
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / "a.conf").write_text(server_block("a.test", "site a"))
    container, port = start_nginx(scratch, conf_d)
    (conf_d / "broken.conf").write_text("server { listen 80; nonsense_directive on; }\n")

    test = scratch.engine.docker("exec", container, "nginx", "-t", check=False)
    assert test.returncode != 0
    assert "nonsense_directive" in test.stderr
    scratch.engine.docker("exec", container, "nginx", "-s", "reload", check=False)
    assert get(port, "a.test") == (200, "site a")


def test_nginx_accepts_the_proxy_settings_odoofleet_renders(
    scratch: Scratch, tmp_path: Path
) -> None:
    conf_d, routes = tmp_path / "conf.d", tmp_path / "routes"
    conf_d.mkdir()
    routes.mkdir()
    (conf_d / "odoofleet.conf").write_text(render_proxy_conf())
    done = scratch.engine.docker(
        "run", "--rm", "-v", f"{conf_d}:/etc/nginx/conf.d:ro", "-v", f"{routes}:{ROUTES_MOUNT}:ro",
        NGINX, "nginx", "-t", check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_nginx_has_the_stream_module(scratch: Scratch) -> None:
    conf = (
        "include /etc/nginx/modules-enabled/*.conf;\n"
        "events {}\n"
        "stream { server { listen 9000; proxy_pass 127.0.0.1:80; } }\n"
    )
    done = scratch.engine.docker(
        "run", "--rm", "-i", "--entrypoint", "sh", NGINX, "-c",
        "cat > /tmp/stream.conf && nginx -t -c /tmp/stream.conf",
        input=conf.encode(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# ---- the server the sagas reach -----------------------------------------------------------------


async def test_a_docker_server_session_runs_the_real_docker_and_compose_v2_on_the_engine(
    docker_engine: DockerEngine, docker_server: DockerSshd, ssh_runner: SshRunner
) -> None:
    # The first bytes of the docker found first in PATH: an ELF binary, not the stand-in.
    script = (
        'head -c 4 "$(command -v docker)" | tail -c 3; echo; '
        "docker compose version --short; docker info -f '{{.ID}}'"
    )
    result = await ssh_runner.run(docker_server.connection_info(), script, time_limit=30)

    assert result.exit_status == 0, result.stderr
    magic, compose, engine_id = result.stdout.split()
    assert magic == "ELF"
    assert compose.startswith("2.")
    assert engine_id == docker_engine.docker("info", "-f", "{{.ID}}").stdout.strip()


# ---- what the tier's teardown checks rely on ----------------------------------------------------


def test_the_inventory_lists_an_anonymous_volume_that_no_label_names(scratch: Scratch) -> None:
    """postgres:16 declares VOLUME /var/lib/postgresql/data: a container without a mount for
    it gets an anonymous volume, which a listing filtered by label never shows."""
    before = scratch.engine.inventory()
    container = scratch.name("anon")
    scratch.run("--name", container, "--entrypoint", "true", POSTGRES)

    new = scratch.engine.inventory() - before
    mounts = scratch.engine.docker("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", container)
    volume = mounts.stdout.strip()
    assert container in new.containers
    assert volume in new.volumes
    assert len(volume) == 64  # Docker names an anonymous volume by a random hex id
    scratch.engine.docker("rm", "-v", container)
    assert volume not in scratch.engine.inventory().volumes
