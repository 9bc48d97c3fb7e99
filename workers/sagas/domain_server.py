"""What the domain sagas do on an instance's server, over SSH: the ACME challenge files
written where the proxy serves them, a certificate and the domain's HTTPS route installed
(`nginx -t`, then `nginx -s reload`; a rejected configuration leaves the previous one in
force), the HTTPS forwarder running, and all of it taken away again."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from commands.domain_name import InvalidDomainName, normalize_domain
from commands.instance_state import Existing, InstanceFacts
from workers.acme.config import DomainConfig
from workers.runtime.slots import OperationLocks
from workers.sagas.deps import SagaDeps
from workers.sagas.instance_saga import load_instance
from workers.sagas.instance_spec import open_secrets, spec_of
from workers.sagas.proxy_steps import (
    domain_route,
    drained_command,
    serving_workers_command,
    swap_checked_all,
)
from workers.server.commands import ensure_network_command, staged
from workers.server.credentials import (
    connection_info,
    load_server,
    open_server_secrets,
    profile_of,
)
from workers.server.fields import check_slug
from workers.server.layout import EDGE_NETWORK, PROXY_CONTAINER, InstanceLayout, ProxyLayout
from workers.server.remote import Remote, StepError
from workers.server.render_proxy import (
    ACME_DIR,
    TLS_DIR,
    TLS_FORWARDER,
    render_domain_route,
    render_route,
    render_tls_forwarder_compose,
    render_tls_forwarder_conf,
)
from workers.server.shell import cmd, fail, if_then, locked, script, sequence

PUBLIC = 0o644
PRIVATE = 0o600
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


@dataclass(frozen=True)
class DomainPaths:
    """Where a domain's files live in the proxy's directory on the server."""

    proxy: ProxyLayout
    domain: str
    slug: str

    def __post_init__(self) -> None:
        # Paths are built from the name: only a name in its normal form may make them.
        try:
            if normalize_domain(self.domain) != self.domain:
                raise InvalidDomainName("not in its normal form")
        except InvalidDomainName as e:
            raise StepError(f"refused to use the domain {self.domain!r}: {e}") from e

    @property
    def acme_root(self) -> str:
        return f"{self.proxy.routes_dir}/{ACME_DIR}"

    @property
    def tls_dir(self) -> str:
        return f"{self.proxy.routes_dir}/{TLS_DIR}"

    @property
    def certificate(self) -> str:
        return f"{self.tls_dir}/{self.domain}.pem"

    @property
    def key(self) -> str:
        return f"{self.tls_dir}/{self.domain}.key"

    @property
    def route(self) -> str:
        return domain_route(self.proxy, self.slug, self.domain)

    @property
    def forwarder_dir(self) -> str:
        return f"{self.proxy.dir}/tls-forwarder"


@contextlib.asynccontextmanager
async def server_of(deps: SagaDeps, instance_id: str) -> AsyncIterator[tuple[Existing, Remote]]:
    """The instance and a connection to its server (sessions counted against its cap)."""
    instance = await load_instance(deps, instance_id)
    profile = profile_of(await load_server(deps.store, instance.facts.server_id))
    secrets = await open_server_secrets(deps.vault, profile)
    async with OperationLocks(deps.conninfo, deps.config.lock_poll) as locks:
        try:
            info = connection_info(profile, secrets, deps.config.connect_timeout)
        except ValueError as e:
            raise StepError(str(e)) from e
        yield instance, Remote(deps.runner, info, locks, slot_timeout=deps.config.lock_timeout)


async def publish_challenges(
    remote: Remote, paths: DomainPaths, challenges: list[tuple[str, str]]
) -> None:
    """Each challenge file readable by nginx's workers (they do not run as root)."""
    directory = f"{paths.acme_root}{CHALLENGE_PREFIX.rstrip('/')}"
    await remote.check(cmd("install", "-d", "-m", "755", paths.acme_root, directory))
    for path, content in challenges:
        token = path.removeprefix(CHALLENGE_PREFIX)
        if path == token or not token.replace("-", "").replace("_", "").isalnum():
            raise StepError(f"the CA sent an unexpected challenge path {path!r}")
        await remote.upload(f"{directory}/{token}", content.encode(), PUBLIC)


async def install_certificate(
    deps: SagaDeps,
    config: DomainConfig,
    remote: Remote,
    instance: InstanceFacts,
    paths: DomainPaths,
    fullchain: str,
    private_key: str,
    *,
    http_redirect: bool = True,
) -> str:
    """The certificate and key (0600) and the domain's route in force, checked by nginx; the
    HTTPS forwarder running. A route nginx rejects is taken back (install_checked). Without
    `http_redirect` (the auto subdomain), the route adds HTTPS only."""
    if instance.active_color is None:
        raise StepError("the instance was never provisioned: nothing to route the domain to")
    spec = spec_of(instance, await open_secrets(deps.vault, instance))
    route = render_domain_route(
        spec,
        instance.active_color,
        paths.domain,
        hsts=config.hsts,
        http_port=config.http_port,
        https_port=config.https_port,
        http_redirect=http_redirect,
    )
    await remote.check(cmd("install", "-d", "-m", "700", paths.tls_dir))
    # New files beside the old ones, moved in place under the proxy's lock with the route.
    await remote.upload(staged(paths.certificate), fullchain.encode(), PRIVATE)
    await remote.upload(staged(paths.key), private_key.encode(), PRIVATE)
    await remote.upload(staged(paths.route), route.encode(), PUBLIC)
    swap = swap_checked(
        [paths.certificate, paths.key, paths.route], f"certificate of {paths.domain}"
    )
    active = InstanceLayout(instance.slug, paths.proxy.root).active_color
    follow = follow_active_color(staged(paths.route), active, instance.slug)
    installed = await remote.check(locked(paths.proxy.lock, script(follow, swap)))
    await _ensure_forwarder(remote, paths, config.https_port)
    return installed


async def serve_challenges_on_route(
    deps: SagaDeps, remote: Remote, instance: InstanceFacts, proxy: ProxyLayout
) -> str:
    """The instance's own route serving ACME's challenges for its auto subdomain (routes
    rendered before it did get it now): re-rendered, pointed at the colour the server says
    serves, checked by nginx and reloaded under the proxy's lock, then the previous workers
    awaited (a CA asking right after must meet the new configuration). A route that has the
    challenges already is left alone. Staged as `.acme`, not `.new`: a colour switch may have
    its own new route waiting for the lock."""
    if instance.active_color is None:
        raise StepError("the instance was never provisioned: nothing to route the domain to")
    spec = spec_of(instance, await open_secrets(deps.vault, instance))
    current = proxy.route(instance.slug)
    new = f"{current}.acme"
    prev = f"{current}.prev"
    await remote.upload(new, render_route(spec, instance.active_color).encode(), PUBLIC)
    active = InstanceLayout(instance.slug, proxy.root).active_color
    nginx = ("docker", "exec", PROXY_CONTAINER, "nginx")
    swap = script(
        follow_active_color(new, active, instance.slug),
        f'old=$({serving_workers_command()}) || old=""',
        cmd("cp", "-p", current, prev),
        cmd("mv", "-f", new, current),
        if_then(
            cmd(*nginx, "-t"),
            script(cmd(*nginx, "-s", "reload"), cmd("rm", "-f", prev), drained_command()),
            sequence(
                cmd("mv", "-f", prev, current),
                fail(f"nginx rejected the route of {instance.slug}; the previous one is back"),
            ),
        ),
    )
    served = f"grep -qF {cmd(CHALLENGE_PREFIX)} {cmd(current)}"
    body = if_then(
        f"[ ! -f {cmd(current)} ] || {served}",
        script(cmd("rm", "-f", new), cmd("echo", "the route serves ACME's challenges already")),
        swap,
    )
    return await remote.check(locked(proxy.lock, body))


def follow_active_color(route: str, active_color_file: str, slug: str) -> str:
    """The staged route pointed at the colour the server says serves (a switch may have run
    since the saga read the instance; both take the proxy's lock)."""
    slug = check_slug(slug)
    rewrite = (
        f'sed -i -e "s/{slug}-blue-odoo-1/{slug}-$c-odoo-1/g"'
        f' -e "s/{slug}-green-odoo-1/{slug}-$c-odoo-1/g" {cmd(route)}'
    )
    read = f"c=$(cat {cmd(active_color_file)})"
    pick = f'case "$c" in blue|green) {rewrite} ;; *) true ;; esac'
    return if_then(f"[ -f {cmd(active_color_file)} ]", script(read, pick), "true")


def swap_checked(currents: list[str], what: str) -> str:
    """Each file's staged version in place, checked by nginx and reloaded, or all put back
    (proxy_steps.swap_checked_all over these files). Run under the proxy's lock."""
    return sequence(f"set -- {cmd(*currents)}", swap_checked_all(what))


async def _ensure_forwarder(remote: Remote, paths: DomainPaths, https_port: int) -> None:
    compose = f"{paths.forwarder_dir}/compose.yaml"
    await remote.check(cmd("install", "-d", "-m", "755", paths.forwarder_dir))
    await remote.upload(compose, render_tls_forwarder_compose(https_port).encode(), PUBLIC)
    await remote.upload(
        f"{paths.forwarder_dir}/nginx.conf", render_tls_forwarder_conf().encode(), PUBLIC
    )
    up = cmd("docker", "compose", "-p", TLS_FORWARDER, "-f", compose, "up", "-d")
    await remote.check(locked(paths.proxy.lock, script(ensure_network_command(EDGE_NETWORK), up)))


async def remove_domain_files(remote: Remote, paths: DomainPaths) -> str:
    """The route set aside, nginx checked and reloaded without it, then the route, the
    certificate and its key deleted. If nginx rejects the configuration without it, the
    route is put back and the step fails (nothing else changed)."""
    aside = f"{paths.route}.prev"
    running = cmd("docker", "inspect", "-f", "{{.State.Running}}", PROXY_CONTAINER)
    proxy_running = f'[ "$({running} 2>/dev/null)" = true ]'
    check = if_then(
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-t"),
        cmd("docker", "exec", PROXY_CONTAINER, "nginx", "-s", "reload"),
        script(
            cmd("mv", "-f", aside, paths.route),
            fail(f"nginx rejected the configuration without the route of {paths.domain}"),
        ),
    )
    body = script(
        cmd("rm", "-f", staged(paths.route)),
        if_then(
            f"[ -f {cmd(paths.route)} ]",
            script(
                cmd("mv", "-f", paths.route, aside),
                if_then(proxy_running, check),
            ),
        ),
        cmd(
            "rm",
            "-f",
            aside,
            paths.certificate,
            paths.key,
            staged(paths.certificate),
            staged(paths.key),
        ),
    )
    return await remote.check(locked(paths.proxy.lock, body))
