"""Command lines for each provisioning, control and teardown step (ODOO-HOSTING.md §2.6 to
2.10), for `SshRunner.run`.

Every value is validated and quoted (workers/shell.py). Every step is idempotent: run again
after it succeeded, it changes nothing; teardown steps check that a thing exists before
removing it, so "already gone" is success and any other error is a failure. Steps that change
an instance run under `flock` on its lock file: one operation per instance at a time.
"""

from __future__ import annotations

import msgspec

from workers.fields import check_color, check_db_name, check_uuid
from workers.layout import EDGE_NETWORK, PROXY_CONTAINER, PROXY_PROJECT, InstanceLayout, ProxyLayout
from workers.shell import cmd, fail, if_then, locked, quiet, script, sequence, silent

STOP_GRACE_SECONDS = 60
# One line per container: status, health (or "none"), restarts, OOM-killed, exit code.
STATUS_FORMAT = (
    "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} "
    "{{.RestartCount}} {{.State.OOMKilled}} {{.State.ExitCode}}"
)
HEALTH_STATUS_FORMAT = "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"


class ContainerStatus(msgspec.Struct, frozen=True):
    status: str  # created | running | restarting | exited | paused | dead
    health: str  # starting | healthy | unhealthy | none
    restart_count: int
    oom_killed: bool
    exit_code: int


def parse_container_status(output: str) -> ContainerStatus:
    """Read what `container_status_command` printed."""
    words = output.split()
    if len(words) != 5:
        raise ValueError(f"unexpected container status line: {output.strip()!r}")
    status, health, restarts, oom, exit_code = words
    return ContainerStatus(status, health, int(restarts), oom == "true", int(exit_code))


# ---- provisioning -------------------------------------------------------------------------


def layout_command(layout: InstanceLayout) -> str:
    """The instance directory, 0700: the secret and odoo.conf inside are world-readable
    for the containers' own uids (see workers/render.py), so the directory keeps others out."""
    return script(
        cmd("mkdir", "-p", layout.root),
        cmd("install", "-d", "-m", "700", layout.dir, layout.secrets_dir),
        cmd("install", "-d", "-m", "755", f"{layout.dir}/db", f"{layout.dir}/app"),
    )


def networks_and_volumes_command(layout: InstanceLayout, instance_id: str) -> str:
    """The shared edge network and the instance's filestore volume, which outlives both
    app colours (ODOO-HOSTING.md §2.6 step 2)."""
    labelled = f"odoofleet.instance={check_uuid(instance_id)}"
    return script(
        ensure_network_command(EDGE_NETWORK),
        quiet(cmd("docker", "volume", "create", "--label", labelled, layout.filestore_volume)),
    )


def ensure_network_command(name: str) -> str:
    """Create a network unless it exists; losing a creation race to another instance is fine."""
    inspect = silent(cmd("docker", "network", "inspect", name))
    create = quiet(cmd("docker", "network", "create", name))
    return f"{{ {inspect} || {create} || {inspect}; }}"


def db_up_command(layout: InstanceLayout) -> str:
    up = cmd("docker", "compose", "-p", layout.db_project, "-f", layout.db_compose, "up", "-d")
    return locked(layout.lock, up)


def db_health_command(layout: InstanceLayout) -> str:
    """Prints `healthy` once Postgres answers; poll it with a deadline."""
    return cmd("docker", "inspect", "-f", HEALTH_STATUS_FORMAT, layout.db_container)


def create_database_command(layout: InstanceLayout, db_name: str, odoo_version: str) -> str:
    """Initialise the Odoo database with `base` from the blue colour's image, unless
    `psql -l` shows it exists already."""
    db = check_db_name(db_name)
    listing = cmd("docker", "exec", layout.db_container, "psql", "-U", "odoo", "-d", "postgres")
    exists = "printf '%s\\n' \"$dbs\" | cut -d '|' -f 1 | tr -d ' ' | " + cmd("grep", "-qxF", db)
    init = [*_compose_app(layout, "blue"), "run", "--rm", "-T", "--no-deps", "odoo"]
    init += ["odoo", "-d", db, "-i", "base", "--stop-after-init"]
    if int(odoo_version.split(".")[0]) <= 18:
        init.append("--without-demo=all")
    return locked(
        layout.lock,
        script(
            f"dbs=$({listing} -lqt)",
            if_then(exists, cmd("echo", f"database {db} exists"), cmd(*init)),
        ),
    )


def app_up_command(layout: InstanceLayout, color: str) -> str:
    """Start a colour: creates its container, or recreates it when its configuration changed,
    or starts it when stopped. Used to provision, to start and to redeploy."""
    return locked(layout.lock, cmd(*_compose_app(layout, color), "up", "-d"))


def container_status_command(layout: InstanceLayout, color: str) -> str:
    """One line for `parse_container_status`; fail early on exited, OOM or restarts (§2.7)."""
    return cmd("docker", "inspect", "-f", STATUS_FORMAT, layout.app_container(color))


def app_health_command(layout: InstanceLayout, color: str) -> str:
    """Liveness inside the container: `/web/health` answers `{"status": "pass"}`."""
    url = "http://localhost:8069/web/health"
    return cmd("docker", "exec", layout.app_container(color), "curl", "-fsS", "-m", "5", url)


def login_page_command(layout: InstanceLayout, color: str, db_name: str) -> str:
    """Tenant readiness: the login page of the database answers 200. This is the first request
    that loads the registry, so it also warms the colour before it gets traffic."""
    db = check_db_name(db_name)
    url = f"http://localhost:8069/web/login?db={db}"
    curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "60", url]
    code = f"code=$({cmd('docker', 'exec', layout.app_container(color), *curl)})"
    message = cmd("printf", "login page of %s answered HTTP %s\\n", db) + ' "$code" >&2'
    return sequence(code, if_then('[ "$code" != 200 ]', f"{{ {message}; exit 1; }}"))


def write_active_color_command(layout: InstanceLayout, color: str) -> str:
    """Written last, after the proxy switch: the colour that serves traffic."""
    temporary = f"{layout.active_color}.tmp"
    write = cmd("printf", "%s\\n", check_color(color))
    return script(f"{write} > {cmd(temporary)}", cmd("mv", "-f", temporary, layout.active_color))


# ---- the proxy ----------------------------------------------------------------------------


def proxy_layout_command(proxy: ProxyLayout) -> str:
    return script(
        cmd("mkdir", "-p", proxy.root),
        cmd("install", "-d", "-m", "755", proxy.dir, proxy.conf_dir, proxy.routes_dir),
    )


def proxy_up_command(proxy: ProxyLayout) -> str:
    up = cmd("docker", "compose", "-p", PROXY_PROJECT, "-f", proxy.compose, "up", "-d")
    return locked(proxy.lock, script(ensure_network_command(EDGE_NETWORK), up))


def switch_route_command(proxy: ProxyLayout, slug: str) -> str:
    """Put the staged route (uploaded to `staged_route`) in place, check it with `nginx -t`
    and reload; if nginx rejects it, restore the previous route and fail."""
    new, current, previous = proxy.staged_route(slug), proxy.route(slug), proxy.previous_route(slug)
    keep_previous = if_then(
        f"[ -f {cmd(current)} ]",
        cmd("cp", "-p", current, previous),
        cmd("rm", "-f", previous),
    )
    stage = if_then(
        f"[ -f {cmd(new)} ]",
        script(keep_previous, cmd("mv", "-f", new, current)),
        if_then(f"[ ! -f {cmd(current)} ]", fail(f"no route staged for {slug}")),
    )
    restore = if_then(
        f"[ -f {cmd(previous)} ]", cmd("mv", "-f", previous, current), cmd("rm", "-f", current)
    )
    check = if_then(
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-t"),
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-s", "reload"),
        script(restore, fail(f"nginx rejected the new route of {slug}; the previous one is back")),
    )
    return locked(proxy.lock, script(stage, check))


def remove_route_command(proxy: ProxyLayout, slug: str) -> str:
    """Teardown's first step: traffic gets a clean 404 rather than 502s."""
    files = (proxy.route(slug), proxy.staged_route(slug), proxy.previous_route(slug))
    running = cmd("docker", "inspect", "-f", "{{.State.Running}}", PROXY_CONTAINER)
    reload = cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-s", "reload")
    body = script(
        cmd("rm", "-f", *files), if_then(f'[ "$({running} 2>/dev/null)" = true ]', reload)
    )
    return locked(proxy.lock, body)


# ---- control ------------------------------------------------------------------------------


def stop_command(layout: InstanceLayout, color: str) -> str:
    """SIGTERM, then up to a minute for workers to finish in-flight requests."""
    stop = cmd(*_compose_app(layout, color), "stop", "-t", STOP_GRACE_SECONDS)
    return locked(layout.lock, stop)


def restart_command(layout: InstanceLayout, color: str) -> str:
    """Restart in place (picks up a changed odoo.conf); a changed compose file or envVars
    needs `app_up_command`, which recreates the container."""
    restart = cmd(*_compose_app(layout, color), "restart", "-t", STOP_GRACE_SECONDS)
    return locked(layout.lock, restart)


# ---- teardown (ODOO-HOSTING.md §2.10); never `down -v`: volumes go only explicitly ---------


def app_down_command(layout: InstanceLayout, color: str) -> str:
    down = cmd(*_compose_app(layout, color), "down", "-t", STOP_GRACE_SECONDS)
    return if_then(_has_containers(layout.app_project(color)), locked(layout.lock, down))


def db_down_command(layout: InstanceLayout) -> str:
    down = cmd("docker", "compose", "-p", layout.db_project, "-f", layout.db_compose, "down")
    return if_then(_has_containers(layout.db_project), locked(layout.lock, down))


def remove_volumes_command(layout: InstanceLayout) -> str:
    """Only after the final backup: the database and the filestore, for good."""
    volumes = (layout.pgdata_volume, layout.filestore_volume)
    return script(*(_remove_if_present("volume", volume) for volume in volumes))


def remove_network_command(layout: InstanceLayout) -> str:
    return _remove_if_present("network", layout.backend_network)


def remove_directory_command(layout: InstanceLayout) -> str:
    remove = locked(layout.lock, cmd("rm", "-rf", "--", layout.dir))
    return if_then(f"[ -d {cmd(layout.dir)} ]", remove)


def verify_removed_command(layout: InstanceLayout, instance_id: str) -> str:
    """Fails, listing them, if containers, volumes or the directory of the instance remain."""
    label = f"label=odoofleet.instance={check_uuid(instance_id)}"
    containers = cmd("docker", "ps", "-a", "--filter", label, "--format", "{{.Names}}")
    volumes = cmd("docker", "volume", "ls", "-q", "--filter", label)
    directory = if_then(f"[ -e {cmd(layout.dir)} ]", cmd("echo", layout.dir))
    left = f"left=$({containers} && {volumes} && {directory})"
    joined = "\"$(printf '%s' \"$left\" | tr '\\n' ' ')\""
    report = cmd("printf", "left behind after teardown: %s\\n") + f" {joined} >&2"
    return script(left, if_then('[ -n "$left" ]', f"{{ {report}; exit 1; }}"))


# ---- helpers ------------------------------------------------------------------------------


def _compose_app(layout: InstanceLayout, color: str) -> list[str]:
    project = layout.app_project(color)
    env = layout.color_env(color)
    return ["docker", "compose", "-p", project, "--env-file", env, "-f", layout.app_compose]


def _has_containers(project: str) -> str:
    listing = cmd("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}")
    return f'[ -n "$({listing})" ]'


def _remove_if_present(kind: str, name: str) -> str:
    exists = silent(cmd("docker", kind, "inspect", name))
    return if_then(exists, quiet(cmd("docker", kind, "rm", name)))
