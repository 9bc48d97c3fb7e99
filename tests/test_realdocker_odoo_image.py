"""The tier's odoo:<version> images keep the official image's contract (entrypoint, user,
volumes, ports) and their stand-in behaves like Odoo on the wire where odoofleet depends on it
(tests/images/odoo/README.md); a broken image fails here first."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import secrets
import socket
import struct
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realdocker_fixtures import docker_engine_fixture  # noqa: F401
from realdocker_harness import ODOO_VERSIONS, DockerEngine
from sshd_harness import wait_until

pytestmark = pytest.mark.realdocker

POSTGRES = "postgres:16"
SECRET_TARGET = "/run/secrets/pg_password"
PGPASS_TARGET = "/run/secrets/pgpass"


def conf_text(**options: object) -> str:
    body = "".join(f"{key} = {value}\n" for key, value in options.items())
    return f"[options]\naddons_path = /mnt/extra-addons\ndata_dir = /var/lib/odoo\n{body}"


class OdooLab:
    """One bridge network with a postgres:16 (role `odoo`) reachable as `db`, and the Odoo
    containers of the tests, all named with the lab's prefix."""

    def __init__(self, engine: DockerEngine, work: Path) -> None:
        self.engine = engine
        self.work = work
        self.prefix = f"odf-odoo-{secrets.token_hex(4)}"
        self.network = self.name("net")
        self.db = self.name("db")
        self.password = secrets.token_urlsafe(18)
        self.secret = work / "pg_password"
        self.secret.write_text(self.password)
        self.secret.chmod(0o644)
        # libpq ignores a password file others can read: 0600, owned by the image's odoo.
        self.pgpass = work / "pgpass"
        self.pgpass.write_text(f"db:5432:*:odoo:{self.password}\n")
        self.pgpass.chmod(0o600)
        os.chown(self.pgpass, 101, 101)

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def docker(self, *args: str, check: bool = True, input: bytes | None = None) -> Any:
        return self.engine.docker(*args, check=check, input=input)

    def start_database(self) -> None:
        self.docker("network", "create", self.network)
        self.docker("run", "-d", "--name", self.db, "--network", self.network,
                    "--network-alias", "db", "-e", "POSTGRES_USER=odoo",
                    "-e", f"POSTGRES_PASSWORD={self.password}", POSTGRES)  # fmt: skip

        def ready() -> bool:
            state = self.docker("inspect", "-f", "{{.State.Running}}", self.db).stdout.strip()
            if state != "true":
                raise AssertionError(f"postgres:16 stopped: {self.logs(self.db)}")
            probe = ["exec", self.db, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "odoo"]
            return self.docker(*probe, check=False).returncode == 0

        try:
            wait_until(ready, timeout=90, message="postgres:16 serving")
        except AssertionError as error:
            raise AssertionError(f"{error}: {self.logs(self.db)}") from None

    def logs(self, container: str) -> str:
        done = self.docker("logs", container, check=False)
        return f"{done.stdout}{done.stderr}"

    def sql(self, query: str) -> str:
        done = self.docker("exec", "-e", f"PGPASSWORD={self.password}", self.db, "psql", "-h",
                           "127.0.0.1", "-U", "odoo", "-d", "postgres", "-tAc", query)  # fmt: skip
        return str(done.stdout).strip()

    def conf(self, name: str, text: str) -> Path:
        path = self.work / f"{name}.conf"
        path.write_text(text)
        path.chmod(0o644)
        return path

    def odoo_args(self, version: str, *, conf: Path | None, env: dict[str, str]) -> list[str]:
        args = ["--network", self.network]
        if conf is not None:
            args += ["-v", f"{conf}:/etc/odoo/odoo.conf:ro"]
        args += [
            "-v",
            f"{self.secret}:{SECRET_TARGET}:ro",
            "-v",
            f"{self.pgpass}:{PGPASS_TARGET}:ro",
        ]
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        return [*args, f"odoo:{version}"]

    def run_once(
        self,
        version: str,
        *command: str,
        conf: Path | None = None,
        env: dict[str, str] | None = None,
        volume: str | None = None,
    ) -> Any:
        """A container run to its end (`docker run --rm`): its exit code and output."""
        mount = ["-v", f"{volume}:/var/lib/odoo"] if volume else []
        args = self.odoo_args(version, conf=conf, env=env or {})
        return self.docker("run", "--rm", *mount, *args, *command, check=False)

    def start(
        self,
        what: str,
        version: str,
        *command: str,
        conf: Path | None = None,
        env: dict[str, str] | None = None,
        volume: str | None = None,
    ) -> str:
        container = self.name(what)
        mount = ["-v", f"{volume}:/var/lib/odoo"] if volume else []
        ports = ["-p", "127.0.0.1::8069", "-p", "127.0.0.1::8072"]
        args = self.odoo_args(version, conf=conf, env=env or {})
        self.docker("run", "-d", "--name", container, *ports, *mount, *args, *command)
        return container

    def port(self, container: str, inside: int) -> int:
        published = self.docker("port", container, f"{inside}/tcp").stdout.strip().splitlines()
        return int(published[0].rsplit(":", 1)[1])

    def serving(self, container: str, inside: int = 8069) -> int:
        """The host port of `inside` once the container's HTTP service answers there."""
        port = self.port(container, inside)

        def answers() -> bool:
            state = self.docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip()
            if state != "true":
                raise AssertionError(f"{container} stopped: {self.logs(container)}")
            return http_get(port, "/web/health")[0] == 200

        wait_until(answers, timeout=30, message=f"{container} serving on {inside}")
        return port

    def processes(self, container: str) -> list[tuple[str, str]]:
        """(uid, command line) of every process, as `ps` on the server shows them."""
        out = self.docker("top", container, "-eww", "-o", "pid,uid,args").stdout.splitlines()[1:]
        rows = [line.split(None, 2) for line in out if line.strip()]
        return [(uid, args) for _pid, uid, args in rows]

    def init_database(self, version: str, db: str, volume: str) -> None:
        done = self.run_once(version, "odoo", "-d", db, "-i", "base", "--stop-after-init",
                             env={"PASSWORD_FILE": SECRET_TARGET}, volume=volume)  # fmt: skip
        assert done.returncode == 0, done.stderr

    def clean(self) -> None:
        self.engine.remove(self.engine.inventory().matching(self.prefix))


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def login_form(port: int, db: str, login: str, password: str) -> tuple[int, str, str]:
    """POST /web/login like a browser's form (no redirect followed): status, Location, body."""
    body = urllib.parse.urlencode({"db": db, "login": login, "password": password})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(
            "POST", "/web/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
        )
        response = conn.getresponse()
        return response.status, response.getheader("Location") or "", response.read().decode()
    finally:
        conn.close()


def json_rpc(port: int, path: str, params: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def call(port: int, service: str, method: str, *args: Any) -> Any:
    answer = json_rpc(port, "/jsonrpc", {"service": service, "method": method, "args": list(args)})
    if "error" in answer:
        raise RpcError(answer["error"])
    return answer["result"]


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["data"]["message"])
        self.name = error["data"]["name"]
        self.error = error


@pytest.fixture(scope="module")
def lab(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OdooLab]:
    """Holds the engine like docker_server does: a server test's teardown removes whatever
    appeared on the engine meanwhile, and would take the lab's containers with it."""
    work = OdooLab(docker_engine, tmp_path_factory.mktemp("odoo-image"))
    with docker_engine.exclusive():
        try:
            work.start_database()
            yield work
        finally:
            work.clean()


@pytest.fixture
def volume(lab: OdooLab) -> str:
    """A named volume for /var/lib/odoo, like odoofleet's filestore volume."""
    name = lab.name(f"data-{secrets.token_hex(3)}")
    lab.docker("volume", "create", name)
    return name


# ---- the image ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ODOO_VERSIONS)
def test_image_declares_the_official_contract(lab: OdooLab, version: str) -> None:
    raw = lab.docker("image", "inspect", "-f", "{{json .Config}}", f"odoo:{version}").stdout
    config = json.loads(raw)
    assert config["User"] == "odoo"
    assert "ODOO_RC=/etc/odoo/odoo.conf" in config["Env"]
    assert set(config["Volumes"]) == {"/var/lib/odoo", "/mnt/extra-addons"}
    assert set(config["ExposedPorts"]) == {"8069/tcp", "8071/tcp", "8072/tcp"}
    assert config["Entrypoint"] == ["/entrypoint.sh"]
    assert config["Cmd"] == ["odoo"]


def test_image_runs_as_uid_101_with_curl_and_the_default_conf(lab: OdooLab) -> None:
    script = "id -u; id -g; command -v odoo; curl --version | head -n 1; cat $ODOO_RC"
    done = lab.docker("run", "--rm", "odoo:17.0", "bash", "-c", script)
    uid, gid, odoo, curl, *conf = done.stdout.splitlines()
    assert (uid, gid, odoo) == ("101", "101", "/usr/bin/odoo")
    assert curl.startswith("curl ")
    assert "addons_path = /mnt/extra-addons" in conf
    assert "data_dir = /var/lib/odoo" in conf


# ---- the entrypoint -----------------------------------------------------------------------


def test_entrypoint_puts_env_settings_on_the_command_line_like_the_official_one(
    lab: OdooLab,
) -> None:
    """HOST/USER/PASSWORD_FILE become --db_* arguments (the password too, visible in ps: the
    reason odoofleet must not rely on this path for its secret), after wait-for-psql."""
    conf = lab.conf("plain", conf_text(workers=0))
    env = {"HOST": "db", "USER": "odoo", "PASSWORD_FILE": SECRET_TARGET}
    container = lab.start("entry", "17.0", conf=conf, env=env)
    lab.serving(container)
    [(uid, command)] = lab.processes(container)
    assert uid == "101"
    expected = f"--db_host db --db_port 5432 --db_user odoo --db_password {lab.password}"
    assert command == f"/usr/bin/python3 /usr/bin/odoo {expected}"


def test_entrypoint_up_to_18_passes_the_conf_value_and_19_leaves_it_to_odoo(lab: OdooLab) -> None:
    conf = lab.conf("dbhost", conf_text(db_host="db", workers=0))
    env = {"HOST": "nowhere.invalid", "PASSWORD_FILE": SECRET_TARGET}
    old = lab.start("conf18", "18.0", conf=conf, env=env)
    new = lab.start("conf19", "19.0", conf=conf, env={**env, "PGUSER": "odoo"})
    lab.serving(old)
    lab.serving(new)
    [(_, old_command)] = lab.processes(old)
    [(_, new_command)] = lab.processes(new)
    assert "--db_host db " in old_command  # odoo.conf's value, not HOST's
    assert "--db_host" not in new_command
    assert "--db_user" not in new_command  # PGUSER is set: Odoo 19 reads it itself
    assert f"--db_password {lab.password}" in new_command


@pytest.mark.parametrize("secret", ["PGPASSWORD", "PGPASSFILE"])
def test_exec_path_keeps_the_password_off_every_command_line(
    lab: OdooLab, volume: str, secret: str
) -> None:
    """A command that is not `odoo`/`--…` runs as given: libpq's PG* variables connect."""
    env = {"PGHOST": "db", "PGUSER": "odoo"}
    env[secret] = lab.password if secret == "PGPASSWORD" else PGPASS_TARGET
    db = f"exec_{secret.lower()}"
    container = lab.start(db.replace("_", "-"), "17.0", "/usr/bin/odoo", "-d", db,
                          conf=lab.conf("exec", conf_text(workers=0)), env=env,
                          volume=volume)  # fmt: skip
    port = lab.serving(container)
    assert call(port, "common", "login", db, "admin", "admin") == 2
    commands = [command for _, command in lab.processes(container)]
    assert commands == [f"/usr/bin/python3 /usr/bin/odoo -d {db}"]
    assert not any(lab.password in command for command in commands)


@pytest.mark.parametrize(
    ("command", "env"),
    [(["--db_user", "postgres"], {}), ([], {"PGUSER": "postgres"})],
    ids=["option", "PGUSER"],
)
def test_database_user_postgres_is_refused(
    lab: OdooLab, command: list[str], env: dict[str, str]
) -> None:
    done = lab.run_once("17.0", "/usr/bin/odoo", "--stop-after-init", *command, env=env)
    assert done.returncode == 1
    assert "Using the database user 'postgres' is a security risk, aborting." in done.stderr


def test_wait_for_psql_gives_up_on_an_unreachable_database(lab: OdooLab) -> None:
    started = time.monotonic()
    done = lab.run_once("19.0", "odoo", "--stop-after-init", env={"PGHOST": "nowhere.invalid"})
    assert done.returncode != 0
    assert "Database connection failure" in done.stderr
    assert 25 < time.monotonic() - started < 60  # the official 30 s timeout


# ---- the stand-in -------------------------------------------------------------------------


def test_init_creates_the_database_its_filestore_and_admin_admin(lab: OdooLab, volume: str) -> None:
    lab.init_database("17.0", "acme_init", volume)
    assert lab.sql("SELECT datname FROM pg_database WHERE datname = 'acme_init'") == "acme_init"
    listing = lab.docker("run", "--rm", "-v", f"{volume}:/var/lib/odoo", "--entrypoint", "ls",
                         "odoo:17.0", "/var/lib/odoo/filestore").stdout.split()  # fmt: skip
    assert listing == ["acme_init"]
    container = lab.start("init", "17.0", conf=lab.conf("init", conf_text(workers=0)),
                          env={"PASSWORD_FILE": SECRET_TARGET}, volume=volume)  # fmt: skip
    port = lab.serving(container)
    assert call(port, "common", "login", "acme_init", "admin", "admin") == 2
    session = json_rpc(port, "/web/session/authenticate",
                       {"db": "acme_init", "login": "admin", "password": "admin"})  # fmt: skip
    assert session["result"]["uid"] == 2
    assert http_get(port, "/web/login?db=acme_init")[0] == 200


def test_shell_script_sets_the_admin_password(lab: OdooLab, volume: str) -> None:
    lab.init_database("17.0", "acme_shell", volume)
    container = lab.start("shell", "17.0", conf=lab.conf("shell", conf_text(workers=0)),
                          env={"PASSWORD_FILE": SECRET_TARGET}, volume=volume)  # fmt: skip
    port = lab.serving(container)
    new = secrets.token_urlsafe(16)
    script = f"env.ref('base.user_admin').write({{'password': {new!r}}})\nenv.cr.commit()\n"
    shell = ["exec", "-i", container, "/entrypoint.sh", "odoo", "shell", "-d", "acme_shell",
             "--no-http"]  # fmt: skip
    done = lab.docker(*shell, input=script.encode())
    assert done.returncode == 0, done.stderr
    assert call(port, "common", "login", "acme_shell", "admin", new) == 2
    assert call(port, "common", "login", "acme_shell", "admin", "admin") is False
    refused = json_rpc(port, "/web/session/authenticate",
                       {"db": "acme_shell", "login": "admin", "password": "admin"})  # fmt: skip
    assert refused["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    assert login_form(port, "acme_shell", "admin", new)[:2] == (303, "/web")
    status, _, page = login_form(port, "acme_shell", "admin", "admin")
    assert status == 200
    assert "Wrong login/password" in page


def test_a_shell_script_without_commit_changes_nothing(lab: OdooLab, volume: str) -> None:
    lab.init_database("17.0", "acme_norollback", volume)
    script = b"env['res.users'].browse(2).write({'password': 'forgotten'})\n"
    done = lab.docker("run", "--rm", "-i", "-v", f"{volume}:/var/lib/odoo",
                      *lab.odoo_args("17.0", conf=None, env={"PASSWORD_FILE": SECRET_TARGET}),
                      "odoo", "shell", "-d", "acme_norollback", input=script)  # fmt: skip
    assert done.returncode == 0, done.stderr
    container = lab.start("norollback", "17.0", env={"PASSWORD_FILE": SECRET_TARGET},
                          volume=volume)  # fmt: skip
    port = lab.serving(container)
    assert call(port, "common", "login", "acme_norollback", "admin", "admin") == 2


def test_health_partners_and_attachments_over_json_rpc(lab: OdooLab, volume: str) -> None:
    lab.init_database("18.0", "acme_rpc", volume)
    container = lab.start("rpc", "18.0", conf=lab.conf("rpc", conf_text(workers=0)),
                          env={"PASSWORD_FILE": SECRET_TARGET}, volume=volume)  # fmt: skip
    port = lab.serving(container)
    status, body = http_get(port, "/web/health")
    assert (status, json.loads(body)) == (200, {"status": "pass"})
    status, body = http_get(port, "/web/health?db_server_status=1")
    assert (status, json.loads(body)) == (200, {"status": "pass", "db_server_status": True})
    assert call(port, "common", "version")["server_version"] == "18.0"

    def kw(model: str, method: str, args: list[Any], **kwargs: Any) -> Any:
        return call(
            port, "object", "execute_kw", "acme_rpc", 2, "admin", model, method, args, kwargs
        )

    partner = kw("res.partner", "create", [{"name": "Acme Corp", "email": "a@acme.test"}])
    assert kw("res.partner", "read", [[partner]], fields=["name", "email"]) == [
        {"id": partner, "name": "Acme Corp", "email": "a@acme.test"}
    ]
    assert kw("res.partner", "write", [[partner], {"phone": "+32 2 000"}]) is True
    found = kw("res.partner", "search_read", [[["name", "ilike", "acme"]]], fields=["phone"])
    assert found == [{"id": partner, "phone": "+32 2 000"}]
    assert "email" in kw("res.partner", "fields_get", [], attributes=["type"])
    assert kw("res.partner", "unlink", [[partner]]) is True
    with pytest.raises(RpcError) as missing:
        kw("res.partner", "read", [[partner]])
    assert missing.value.name == "odoo.exceptions.MissingError"
    with pytest.raises(RpcError) as denied:
        call(port, "object", "execute_kw", "acme_rpc", 2, "wrong", "res.partner", "search", [[]])
    assert denied.value.name == "odoo.exceptions.AccessDenied"

    content = base64.b64encode(b"invoice body").decode()
    attachment = kw("ir.attachment", "create", [{"name": "invoice.txt", "datas": content}])
    [stored] = kw("ir.attachment", "read", [[attachment]], fields=["store_fname", "datas"])
    assert stored["datas"] == content
    path = f"/var/lib/odoo/filestore/acme_rpc/{stored['store_fname']}"
    assert lab.docker("exec", container, "cat", path).stdout == "invoice body"


def test_two_colours_share_the_database_and_the_filestore(lab: OdooLab, volume: str) -> None:
    lab.init_database("17.0", "acme_colours", volume)
    conf = lab.conf("colours", conf_text(db_name="acme_colours", workers=2, gevent_port=8072))
    env = {"PASSWORD_FILE": SECRET_TARGET}
    blue = lab.serving(lab.start("blue", "17.0", conf=conf, env=env, volume=volume))
    green = lab.serving(lab.start("green", "17.0", conf=conf, env=env, volume=volume))
    content = base64.b64encode(b"shared").decode()
    args = ["acme_colours", 2, "admin", "ir.attachment"]
    created = call(
        blue, "object", "execute_kw", *args, "create", [{"name": "s.txt", "datas": content}]
    )
    [read] = call(green, "object", "execute_kw", *args, "read", [[created]], {"fields": ["datas"]})
    assert read["datas"] == content


def test_health_passes_while_the_database_does_not_answer(lab: OdooLab) -> None:
    env = {"PGHOST": "nowhere.invalid", "PGUSER": "odoo"}
    container = lab.start("nodb", "17.0", "/usr/bin/odoo", env=env)
    port = lab.serving(container)
    status, body = http_get(port, "/web/health?db_server_status=1")
    assert (status, json.loads(body)) == (500, {"status": "fail", "db_server_status": False})
    assert http_get(port, "/web/login")[0] == 500


# ---- websockets and versions --------------------------------------------------------------


def websocket_connect(port: int) -> socket.socket:
    key = base64.b64encode(os.urandom(16)).decode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(
        f"GET /websocket HTTP/1.1\r\nHost: odoo.test\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(1)
        assert chunk, f"connection closed during the handshake: {head!r}"
        head += chunk
    status, *lines = head.decode().split("\r\n")
    assert status.startswith("HTTP/1.1 101 "), status
    headers = {
        line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines if line
    }
    expected = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").encode()).digest()
    assert headers["sec-websocket-accept"] == base64.b64encode(expected).decode()
    return conn


def send_frame(conn: socket.socket, opcode: int, payload: bytes) -> None:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    conn.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


def receive_frame(conn: socket.socket) -> tuple[int, bytes]:
    first, length = conn.recv(1)[0], conn.recv(1)[0] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", conn.recv(2))
    payload = b""
    while len(payload) < length:
        payload += conn.recv(length - len(payload))
    return first & 0x0F, payload


@pytest.mark.parametrize(
    ("version", "key"), [("16.0", "longpolling_port"), ("19.0", "gevent_port")]
)
def test_websocket_on_the_evented_port_of_the_version(lab: OdooLab, version: str, key: str) -> None:
    conf = lab.conf(f"ws{version}", conf_text(workers=2, **{key: 8072}))
    container = lab.start(f"ws{version[:2]}", version, "/usr/bin/odoo", conf=conf,
                          env={"PGHOST": "db", "PGUSER": "odoo"})  # fmt: skip
    lab.serving(container)
    evented = lab.serving(container, 8072)
    with websocket_connect(evented) as conn:
        send_frame(conn, 0x1, b'{"event_name": "subscribe"}')
        assert receive_frame(conn) == (0x1, b'{"event_name": "subscribe"}')
        send_frame(conn, 0x9, b"beat")
        assert receive_frame(conn) == (0xA, b"beat")
    # Prefork mode: the HTTP port has no gevent socket to upgrade (KeyError: 'socket').
    assert http_get(lab.port(container, 8069), "/websocket")[0] == 500


def test_odoo_15_long_polls_instead_of_websockets(lab: OdooLab) -> None:
    conf = lab.conf("ws15", conf_text(workers=2, longpolling_port=8072))
    container = lab.start("ws15", "15.0", "/usr/bin/odoo", conf=conf,
                          env={"PGHOST": "db", "PGUSER": "odoo"})  # fmt: skip
    evented = lab.serving(container, 8072)
    assert http_get(evented, "/websocket")[0] == 404
    assert json_rpc(evented, "/longpolling/poll", {"channels": [], "last": 0})["result"] == []


@pytest.mark.parametrize(
    ("version", "key", "accepted"),
    [
        ("16.0", "gevent_port", False),
        ("17.0", "longpolling_port", True),
        ("19.0", "longpolling_port", False),
        ("17.0", "no_such_option", False),
    ],
)
def test_conf_keys_the_version_does_not_know_are_refused(
    lab: OdooLab, version: str, key: str, accepted: bool
) -> None:
    conf = lab.conf(f"key-{version}-{key}", conf_text(**{key: 8072}))
    done = lab.run_once(version, "/usr/bin/odoo", "--stop-after-init", conf=conf)
    if accepted:
        assert done.returncode == 0, done.stderr
        assert "deprecated alias" in done.stderr
    else:
        assert done.returncode != 0
        assert f"unknown option '{key}' in the config file" in done.stderr


def test_sigterm_stops_the_server_cleanly_within_a_second(lab: OdooLab) -> None:
    conf = lab.conf("sig", conf_text(workers=2))
    env = {"PGHOST": "db", "PGUSER": "odoo"}
    container = lab.start("sigterm", "17.0", "/usr/bin/odoo", conf=conf, env=env)
    lab.serving(container)
    ws = websocket_connect(lab.serving(container, 8072))
    started = time.monotonic()
    lab.docker("stop", "-t", "10", container)
    assert time.monotonic() - started < 2
    assert lab.docker("inspect", "-f", "{{.State.ExitCode}}", container).stdout.strip() == "0"
    opcode, payload = receive_frame(ws)
    assert (opcode, payload[:2]) == (0x8, struct.pack("!H", 1001))
    ws.close()
    assert "Initiating shutdown" in lab.docker("logs", container).stderr


def test_odoo_19_reads_odoo_env_options_ahead_of_odoo_conf(lab: OdooLab, volume: str) -> None:
    env = {"PASSWORD_FILE": SECRET_TARGET}
    for db in ("acme_list", "other_list"):
        lab.init_database("19.0", db, volume)
    conf = lab.conf("list19", conf_text(list_db=False, dbfilter="^acme_list$", workers=0))
    locked = lab.start("locked19", "19.0", conf=conf, env=env, volume=volume)
    opened = lab.start("opened19", "19.0", conf=conf, volume=volume,
                       env={**env, "ODOO_LIST_DB": "True", "ODOO_DBFILTER": ".*"})  # fmt: skip
    refused = json_rpc(lab.serving(locked), "/web/database/list", {})
    assert refused["error"]["data"]["name"] == "odoo.exceptions.AccessDenied"
    listed = json_rpc(lab.serving(opened), "/web/database/list", {})
    assert {"acme_list", "other_list"} <= set(listed["result"])
    assert "http_interface" in lab.docker("logs", locked).stderr  # the 20.0 default warning
