"""The per-server proxy and an instance's port forwarder, from a saga: the proxy running with
its settings checked by `nginx -t`, an instance's route pointed at a colour (atomically,
checked, then reloaded), and the forwarder that publishes the instance's host ports."""

from __future__ import annotations

from workers.server.commands import (
    install_checked,
    ports_up_command,
    proxy_layout_command,
    proxy_up_command,
    staged,
    write_active_color_command,
)
from workers.server.fields import check_color, check_slug
from workers.server.layout import PROXY_CONTAINER, InstanceLayout, ProxyLayout
from workers.server.payload import Payload
from workers.server.remote import Remote
from workers.server.render_proxy import (
    render_ports_compose,
    render_ports_conf,
    render_proxy_compose,
    render_proxy_conf,
    render_route,
)
from workers.server.shell import cmd, fail, if_then, locked, script, sequence
from workers.server.spec import InstanceSpec

PUBLIC = 0o644
# How long a route switch waits for the nginx workers of the previous configuration to exit:
# they finish the requests they accepted (still on the old colour) and only then go; a
# long-lived connection (websocket, longpolling) may hold one longer, so the wait is bounded.
DRAIN_SECONDS = 10
_DRAIN_POLLS_PER_SECOND = 10


async def ensure_proxy(remote: Remote, proxy: ProxyLayout, time_limit: float) -> str:
    """`proxy_work` in a command of its own (a server's validation)."""
    payload = Payload()
    return await remote.check(proxy_work(payload, proxy), time_limit=time_limit, payload=payload)


def proxy_work(payload: Payload, proxy: ProxyLayout) -> str:
    """`odoofleet-proxy` running on `odoofleet-edge`: created or started only when it is not
    running, never recreated under the instances it routes."""
    return script(
        proxy_layout_command(proxy),
        payload.install(proxy.compose, render_proxy_compose().encode(), PUBLIC),
        payload.install(staged(proxy.conf_file), render_proxy_conf().encode(), PUBLIC),
        proxy_up_command(proxy),
    )


def ports_work(
    payload: Payload, layout: InstanceLayout, spec: InstanceSpec, *, public: bool
) -> str:
    """The instance's forwarder, publishing its host ports on 127.0.0.1 (or every interface
    when the server's publicHostPorts is set)."""
    compose = render_ports_compose(spec, public=public)
    where = "every interface" if public else "127.0.0.1"
    ports = f"{spec.http_port_host} and {spec.longpolling_port_host}"
    said = f"host ports {ports} published on {where} by {layout.ports_container}"
    return script(
        payload.install(layout.ports_compose, compose.encode(), PUBLIC),
        payload.install(layout.ports_conf, render_ports_conf(spec).encode(), PUBLIC),
        ports_up_command(layout),
        cmd("printf", "%s\\n", said),
    )


async def switch_route(
    remote: Remote, proxy: ProxyLayout, layout: InstanceLayout, spec: InstanceSpec, color: str
) -> str:
    """`route_work` in a command of its own (a redeploy)."""
    payload = Payload()
    return await remote.check(route_work(payload, proxy, layout, spec, color), payload=payload)


def route_work(
    payload: Payload, proxy: ProxyLayout, layout: InstanceLayout, spec: InstanceSpec, color: str
) -> str:
    """Route the instance, and its custom domains, to `color`, then record it as the active
    colour (written last)."""
    said = f"route of {spec.auto_subdomain} points at {layout.app_container(color)}"
    return script(
        payload.install(proxy.staged_route(spec.slug), render_route(spec, color).encode(), PUBLIC),
        follow_color_command(proxy, spec.slug, color),
        write_active_color_command(layout, color),
        cmd("printf", "%s\\n", said),
    )


def domain_route(proxy: ProxyLayout, slug: str, domain: str) -> str:
    """A custom domain's route; `_domain.` cannot begin a slug ([a-z0-9] first), and the
    slug (no dots) in the name lets a colour switch find the instance's domains."""
    return f"{proxy.routes_dir}/_domain.{check_slug(slug)}.{domain}.conf"


def follow_color_command(proxy: ProxyLayout, slug: str, color: str) -> str:
    """The staged route of the instance in force, and its custom domains' routes pointed at
    the same colour, in one checked reload: one `nginx -t`, then `nginx -s reload`; if nginx
    rejects the result, every file is as it was (the domains' routes name the app container
    of a colour, and a redeploy stops the old colour right after the switch). With no custom
    domain, what switch_route_command does (under the same lock, taken once)."""
    slug, color = check_slug(slug), check_color(color)
    domains = f"{cmd(proxy.routes_dir)}/_domain.{slug}.*.conf"
    rewrite = cmd(
        "sed",
        "-e",
        f"s/{slug}-blue-odoo-1/{slug}-{color}-odoo-1/g",
        "-e",
        f"s/{slug}-green-odoo-1/{slug}-{color}-odoo-1/g",
    )
    collect = (
        f'set --; for f in {domains}; do if [ -f "$f" ]; then '
        f'{rewrite} "$f" > "$f.new" || exit 1; set -- "$@" "$f"; fi; done'
    )
    together = sequence(
        f'set -- {cmd(proxy.route(slug))} "$@"',
        swap_checked_all(f"the routes of {slug}"),
    )
    body = sequence(
        collect,
        if_then(
            '[ "$#" -eq 0 ]',
            install_checked(proxy.staged_route(slug), proxy.route(slug), f"route of {slug}"),
            together,
        ),
    )
    return locked(
        proxy.lock,
        script(
            f'old=$({serving_workers_command()}) || old=""', "{ " + body + "; }", drained_command()
        ),
    )


def serving_workers_command() -> str:
    """The PIDs of the proxy's nginx workers serving now (not those an earlier reload is
    already shutting down), as `nginx -s reload` leaves them: it returns once the master got
    SIGHUP, and until the master has started new workers these accept requests under the
    previous configuration. Read from /proc inside the container (the image has no ps)."""
    listing = (
        'for f in /proc/[0-9]*/cmdline; do t=$(tr "\\0" " " < "$f" 2>/dev/null); case "$t" in '
        '"nginx: worker process is shutting down"*) ;; '
        '"nginx: worker process"*) p=${f#/proc/}; echo "${p%/cmdline}";; esac; done'
    )
    return cmd("docker", "exec", PROXY_CONTAINER, "sh", "-c", listing)


def drained_command(seconds: int = DRAIN_SECONDS) -> str:
    """Wait (polling /proc, at most `seconds`) until the workers listed in `$old` before the
    reload have exited, so that whatever the caller stops next (a redeploy's old colour) has
    no request left in flight and none can reach it. Workers still running at the deadline
    are reported, not fatal: only long-lived connections keep them, and those end with the
    old colour either way. A worker is gone once its /proc entry is (or it is a zombie: exited,
    not yet reaped by the master). No `$old` (no worker found): nothing to wait for."""
    polls = seconds * _DRAIN_POLLS_PER_SECOND
    wait = (
        'i=0; while :; do left=""; for p in "$@"; do '
        'if grep -q "^State:[[:space:]]*[^Z[:space:]]" "/proc/$p/status" 2>/dev/null; then '
        'left="$left $p"; fi; done; '
        'if [ -z "$left" ]; then echo "the previous nginx workers have exited"; exit 0; fi; '
        f'i=$((i+1)); if [ "$i" -ge {polls} ]; then echo "nginx workers of the previous'
        f' configuration still running after {seconds} s:$left"; exit 0; fi; '
        f"sleep {1 / _DRAIN_POLLS_PER_SECOND}; done"
    )
    waiting = cmd("docker", "exec", PROXY_CONTAINER, "sh", "-c", wait, "sh")
    return if_then('[ -n "$old" ]', f"{waiting} $old", "true")


def swap_checked_all(what: str) -> str:
    """For the files in "$@": each one's staged version (`<file>.new`) in place, then
    `nginx -t` and `nginx -s reload` (always: a renewed certificate under an unchanged route
    needs it); if nginx rejects the result, every file is back as it was and the script
    fails; nginx never stopped serving the previous configuration."""
    keep = (
        'for f in "$@"; do if [ -f "$f" ]; then cp -p "$f" "$f.prev" || exit 1; '
        'else rm -f "$f.prev"; fi; done'
    )
    put = 'for f in "$@"; do mv -f "$f.new" "$f" || exit 1; done'
    restore = (
        'for f in "$@"; do if [ -f "$f.prev" ]; then mv -f "$f.prev" "$f"; '
        'else rm -f "$f"; fi; done'
    )
    drop = 'for f in "$@"; do rm -f "$f.prev"; done'
    check = if_then(
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-t"),
        script(cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-s", "reload"), drop),
        sequence(restore, fail(f"nginx rejected {what}; the previous ones are back")),
    )
    return script(keep, put, check)
