"""Command lines for each provisioning, control and teardown step (ODOO-HOSTING.md §2.6 to
2.10), for `SshRunner.run`.

Every value is validated and quoted (workers/server/shell.py). Every step is idempotent: run again
after it succeeded, it changes nothing; teardown steps check that a thing exists before
removing it, so "already gone" is success and any other error is a failure. Steps that change
an instance run under `flock` on its lock file: one operation per instance at a time.
"""

from __future__ import annotations

import math

import msgspec

from workers.server.fields import check_color, check_db_name, check_uuid
from workers.server.layout import (
    EDGE_NETWORK,
    PROXY_CONTAINER,
    PROXY_PROJECT,
    InstanceLayout,
    ProxyLayout,
)
from workers.server.render import odoo_command
from workers.server.shell import cmd, fail, if_then, locked, quiet, script, sequence, silent

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
    for the containers' own uids (see workers/server/render.py), so the directory keeps
    others out."""
    return script(
        cmd("mkdir", "-p", layout.root),
        cmd("install", "-d", "-m", "700", layout.dir, layout.secrets_dir),
        cmd("install", "-d", "-m", "755", *(f"{layout.dir}/{d}" for d in ("db", "app", "ports"))),
    )


def networks_and_volumes_command(layout: InstanceLayout, instance_id: str) -> str:
    """The shared edge network and the instance's filestore and addons volumes, which
    outlive both app colours (ODOO-HOSTING.md §2.6 step 2)."""
    labelled = f"odoofleet.instance={check_uuid(instance_id)}"
    volumes = (layout.filestore_volume, layout.extra_addons_volume)
    return script(
        ensure_network_command(EDGE_NETWORK),
        *(quiet(cmd("docker", "volume", "create", "--label", labelled, v)) for v in volumes),
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
    return cmd(*db_health_command_words(layout))


def db_health_command_words(layout: InstanceLayout) -> list[str]:
    return ["docker", "inspect", "-f", HEALTH_STATUS_FORMAT, layout.db_container]


def wait_db_healthy_command(
    layout: InstanceLayout, timeout: float, interval: float, look_limit: float
) -> str:
    """Wait, on the server, for the database container to be `healthy` (success) or
    `unhealthy` (failure)."""
    name = layout.db_container
    arms = [
        "healthy) " + cmd("printf", "%s is healthy\\n", name) + "; exit 0;;",
        "unhealthy) " + fail(f"{name} is unhealthy: PostgreSQL does not answer") + ";;",
    ]
    look = db_health_command_words(layout)
    return poll_command(look, arms, f"{name} becoming healthy", timeout, interval, look_limit)


def wait_stopped_command(
    layout: InstanceLayout, color: str, timeout: float, interval: float, look_limit: float
) -> str:
    """Wait, on the server, for a colour's container to be exited (or only created)."""
    name = layout.app_container(color)
    stopped = cmd("printf", "%s is %s\\n", name) + ' "${seen%% *}"; exit 0;;'
    look = container_status_words(layout, color)
    arms = ['"exited "*|"created "*) ' + stopped]
    return poll_command(look, arms, f"{name} stopping", timeout, interval, look_limit)


def poll_command(
    look: list[str],
    arms: list[str],
    waiting_for: str,
    timeout: float,
    interval: float,
    look_limit: float,
) -> str:
    """Run `look` every `interval` seconds until one of the `case` arms on its output (in
    `$seen`) ends the script, for at most about `timeout` seconds, each look within
    `look_limit`; then fail, saying what was seen last (as workers/server/remote.py's `poll`)."""
    late = cmd("printf", f"%s not within {timeout:g}s; last seen: %s\\n", waiting_for)
    return "; ".join(
        [
            f"end=$(( $(date +%s) + {math.ceil(timeout)} ))",
            "while :",
            f"do seen=$({cmd('timeout', '-k', 5, f'{look_limit:g}', *look)} 2>&1); st=$?",
            f'if [ "$st" -eq 0 ]; then case "$seen" in {" ".join(arms)} esac',
            'else seen="$seen (exit status $st)"; fi',
            f'if [ "$(date +%s)" -ge "$end" ]; then {late} "$seen" >&2; exit 1; fi',
            f"sleep {interval:g}",
            "done",
        ]
    )


def create_database_command(layout: InstanceLayout, db_name: str, odoo_version: str) -> str:
    """Initialise the Odoo database with `base` from the blue colour's image, unless
    `psql -l` shows it exists already."""
    db = check_db_name(db_name)
    listing = cmd("docker", "exec", layout.db_container, "psql", "-U", "odoo", "-d", "postgres")
    exists = "printf '%s\\n' \"$dbs\" | cut -d '|' -f 1 | tr -d ' ' | " + cmd("grep", "-qxF", db)
    args = ["-d", db, "-i", "base", "--stop-after-init"]
    if int(odoo_version.split(".")[0]) <= 18:
        args.append("--without-demo=all")
    init = [*_compose_app(layout, "blue"), "run", "--rm", "-T", "--no-deps", "odoo"]
    init += odoo_command(*args)
    return locked(
        layout.lock,
        script(
            f"dbs=$({listing} -lqt)",
            if_then(exists, cmd("echo", f"database {db} exists"), cmd(*init)),
        ),
    )


def admin_password_script(password: str) -> bytes:
    """What `odoo shell` reads on its standard input to set the admin user's password (Odoo
    hashes it on write). Uploaded as a file, never put on a command line."""
    write = f"env.ref('base.user_admin').write({{'password': {password!r}}})"
    return f"{write}\nenv.cr.commit()\n".encode()


def set_admin_password_command(
    layout: InstanceLayout, db_name: str, running_color: str | None
) -> str:
    """Run the uploaded admin password script in `odoo shell`: in a one-off container of the
    blue colour's image (at provisioning), or inside the running colour (a rotation). The
    script is removed whatever the outcome."""
    db = check_db_name(db_name)
    shell = odoo_command("shell", "-d", db, "--no-http")
    if running_color is None:
        run = [*_compose_app(layout, "blue"), "run", "--rm", "-T", "--no-deps", "odoo", *shell]
    else:
        run = ["docker", "exec", "-i", layout.app_container(running_color), *shell]
    source = layout.admin_password_script
    body = sequence(f"{cmd(*run)} < {cmd(source)}", "status=$?", cmd("rm", "-f", source))
    return locked(layout.lock, f'{body}; exit "$status"')


def app_up_command(layout: InstanceLayout, color: str) -> str:
    """Start a colour: creates its container, or recreates it when its configuration changed,
    or starts it when stopped. Used to provision, to start and to redeploy."""
    return locked(layout.lock, cmd(*_compose_app(layout, color), "up", "-d"))


def container_status_command(layout: InstanceLayout, color: str) -> str:
    """One line for `parse_container_status`; fail early on exited, OOM or restarts (§2.7)."""
    return cmd(*container_status_words(layout, color))


def container_status_words(layout: InstanceLayout, color: str) -> list[str]:
    return ["docker", "inspect", "-f", STATUS_FORMAT, layout.app_container(color)]


def app_health_command(layout: InstanceLayout, color: str) -> str:
    """Liveness inside the container: `/web/health` answers `{"status": "pass"}`."""
    url = "http://localhost:8069/web/health"
    return cmd("docker", "exec", layout.app_container(color), "curl", "-fsS", "-m", "5", url)


NOT_READY = 3  # the exit status of a readiness look's part that saw the colour not ready yet


def readiness_look_commands(
    layout: InstanceLayout, color: str, db_name: str, wait_seconds: int, interval: float
) -> list[str]:
    """One look at a colour's readiness, as the parts of one command (step_report.py), each
    run only if the one before saw the colour ready so far:

    1. its container's status line (`parse_container_status`) when the look began and when
       it ended: a container still starting is watched on the server, for up to
       `wait_seconds`, until its line changes; exit NOT_READY unless it is running and
       healthy (or has no health check);
    2. `/web/health` answered inside it, with `"pass"` (else NOT_READY);
    3. the login page of its database answering 200 (`login_page_command`)."""
    status = cmd(*container_status_words(layout, color))
    starting = 'case "$seen" in "running starting "*) true;; *) false;; esac'
    watch = "; ".join(
        [
            f"first=$({status}) || exit $?",
            'seen="$first"',
            f"end=$(( $(date +%s) + {wait_seconds} ))",
            f'while {starting} && [ "$seen" = "$first" ] && [ "$(date +%s)" -lt "$end" ]',
            f"do sleep {interval:g}; seen=$({status}) || exit $?",
            "done",
            'printf \'%s\\n%s\\n\' "$first" "$seen"',
            f'case "$seen" in "running healthy "*|"running none "*) ;; *) exit {NOT_READY};; esac',
        ]
    )
    health = "; ".join(
        [
            f"out=$({app_health_command(layout, color)}); st=$?",
            "printf '%s\\n' \"$out\"",
            'if [ "$st" -ne 0 ]; then exit "$st"; fi',
            f'case "$out" in *\'"pass"\'*) ;; *) exit {NOT_READY};; esac',
        ]
    )
    return [watch, health, login_page_command(layout, color, db_name)]


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
    """The proxy's shared settings (uploaded to `staged(conf_file)`) in force, and the proxy
    running. A running proxy is never recreated, whatever its compose file says: the new
    settings are checked and reloaded like a route. Only a proxy that is not running is
    created or started (`up -d`), with the settings put in place first."""
    new, current = staged(proxy.conf_file), proxy.conf_file
    up = cmd("docker", "compose", "-p", PROXY_PROJECT, "-f", proxy.compose, "up", "-d")
    start = script(
        if_then(f"[ -f {cmd(new)} ]", cmd("mv", "-f", new, current)),
        ensure_network_command(EDGE_NETWORK),
        up,
    )
    reload = install_checked(new, current, "the proxy's settings")
    return locked(proxy.lock, if_then(_proxy_running(), reload, start))


def staged(path: str) -> str:
    """Where a new version of a proxy file is uploaded; nginx includes only `*.conf`."""
    return f"{path}.new"


def install_checked(new: str, current: str, what: str) -> str:
    """Put `new` in place of `current` and reload nginx, if `nginx -t` accepts the result;
    otherwise the previous file is back, nginx keeps running on it, and the script fails. A
    staged file identical to the current one changes nothing. Run under the proxy's lock."""
    previous = f"{current}.prev"
    keep_previous = if_then(
        f"[ -f {cmd(current)} ]",
        cmd("cp", "-p", current, previous),
        cmd("rm", "-f", previous),
    )
    unchanged = f"[ -f {cmd(current)} ] && " + cmd("cmp", "-s", new, current)
    stage = if_then(
        f"[ -f {cmd(new)} ]",
        if_then(
            unchanged,
            script(cmd("rm", "-f", new), "exit 0"),
            script(keep_previous, cmd("mv", "-f", new, current)),
        ),
        if_then(f"[ ! -f {cmd(current)} ]", fail(f"nothing staged for {what}")),
    )
    restore = if_then(
        f"[ -f {cmd(previous)} ]", cmd("mv", "-f", previous, current), cmd("rm", "-f", current)
    )
    check = if_then(
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-t"),
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-s", "reload"),
        script(restore, fail(f"nginx rejected the new {what}; the previous one is back")),
    )
    return f"( {stage} && {check} )"


def switch_route_command(proxy: ProxyLayout, slug: str) -> str:
    """Put the staged route (uploaded to `staged_route`) in place, check it with `nginx -t`
    and reload; if nginx rejects it, restore the previous route and fail."""
    install = install_checked(proxy.staged_route(slug), proxy.route(slug), f"route of {slug}")
    return locked(proxy.lock, install)


def remove_route_command(proxy: ProxyLayout, slug: str) -> str:
    """Teardown's first step: traffic gets a clean 404 rather than 502s. The route is set
    aside, not deleted, until nginx accepted the configuration without it."""
    route, aside = proxy.route(slug), proxy.previous_route(slug)
    check = if_then(
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-t"),
        script(
            cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-s", "reload"),
            cmd("rm", "-f", aside),
        ),
        script(
            cmd("mv", "-f", aside, route),
            fail(f"nginx rejected the configuration without the route of {slug}"),
        ),
    )
    body = script(
        cmd("rm", "-f", proxy.staged_route(slug)),
        if_then(
            f"[ -f {cmd(route)} ]",
            script(
                cmd("mv", "-f", route, aside),
                if_then(_proxy_running(), check, cmd("rm", "-f", aside)),
            ),
            cmd("rm", "-f", aside),
        ),
    )
    return locked(proxy.lock, body)


def ports_up_command(layout: InstanceLayout) -> str:
    """The instance's port forwarder running (workers/server/render_proxy.py); `up -d` leaves a
    running one alone unless its files changed."""
    up = cmd("docker", "compose", "-p", layout.ports_project, "-f", layout.ports_compose, "up")
    return locked(layout.lock, script(ensure_network_command(EDGE_NETWORK), f"{up} -d"))


def _proxy_running() -> str:
    running = cmd("docker", "inspect", "-f", "{{.State.Running}}", PROXY_CONTAINER)
    return f'[ "$({running} 2>/dev/null)" = true ]'


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
    """`-v` removes anonymous volumes only: the instance's named volumes are external to the
    app project, which compose never removes (ODOO-HOSTING.md §2.1b)."""
    down = cmd(*_compose_app(layout, color), "down", "-v", "-t", STOP_GRACE_SECONDS)
    return if_then(_has_containers(layout.app_project(color)), locked(layout.lock, down))


def ports_down_command(layout: InstanceLayout) -> str:
    project = layout.ports_project
    down = cmd("docker", "compose", "-p", project, "-f", layout.ports_compose, "down", "-v")
    return if_then(_has_containers(project), locked(layout.lock, down))


def db_down_command(layout: InstanceLayout) -> str:
    down = cmd("docker", "compose", "-p", layout.db_project, "-f", layout.db_compose, "down")
    return if_then(_has_containers(layout.db_project), locked(layout.lock, down))


def remove_volumes_command(layout: InstanceLayout) -> str:
    """Only after the final backup: the database, the filestore and the addons, for good."""
    return script(*(_remove_if_present("volume", volume) for volume in layout.volumes))


def remove_network_command(layout: InstanceLayout) -> str:
    return _remove_if_present("network", layout.backend_network)


def remove_directory_command(layout: InstanceLayout) -> str:
    remove = locked(layout.lock, cmd("rm", "-rf", "--", layout.dir))
    return if_then(f"[ -d {cmd(layout.dir)} ]", remove)


def verify_removed_command(layout: InstanceLayout, proxy: ProxyLayout, instance_id: str) -> str:
    """Fails, listing them, if anything of the instance is left on the server. It lists what
    the server has (every container, volume and network) and looks for the instance's own
    names as well as its label: something created without the label (by hand, or by an
    older odoofleet) is found too. Then its directory and its route files."""
    label = f"label=odoofleet.instance={check_uuid(instance_id)}"
    slug = layout.slug
    # Exact names: a pattern on the slug would also match another instance's (slug `acme`
    # against `acme-db`'s containers); a one-off `run` container carries the label.
    containers = [word for name in layout.containers for word in ("-e", name)]
    volumes = [word for name in layout.volumes for word in ("-e", name)]
    gather = script(
        "c=$(" + cmd("docker", "ps", "-a", "--format", "{{.Names}}") + ")",
        "cl=$(" + cmd("docker", "ps", "-a", "--filter", label, "--format", "{{.Names}}") + ")",
        "v=$(" + cmd("docker", "volume", "ls", "-q") + ")",
        "vl=$(" + cmd("docker", "volume", "ls", "-q", "--filter", label) + ")",
        "n=$(" + cmd("docker", "network", "ls", "--format", "{{.Name}}") + ")",
    )
    found = [
        "printf '%s\\n' \"$c\" | " + cmd("grep", "-xF", *containers),
        "printf '%s\\n' \"$cl\"",
        "printf '%s\\n' \"$v\" | " + cmd("grep", "-xF", *volumes),
        "printf '%s\\n' \"$vl\"",
        "printf '%s\\n' \"$n\" | " + cmd("grep", "-xF", layout.backend_network),
    ]
    files = (layout.dir, proxy.route(slug), proxy.staged_route(slug), proxy.previous_route(slug))
    found += [f"{{ [ ! -e {cmd(path)} ] || {cmd('echo', path)}; }}" for path in files]
    listed = "{ " + "; ".join(found) + "; }"
    left = f"left=$({listed} | sort -u | sed '/^$/d' | tr '\\n' ' ')"
    report = cmd("printf", "left behind after teardown: %s\\n") + ' "$left" >&2'
    return script(gather, left, if_then('[ -n "$left" ]', f"{{ {report}; exit 1; }}"))


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
